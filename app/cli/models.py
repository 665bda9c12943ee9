"""`ollama-relay models ...` and `secrets rotate`."""

import json
import os

import click
from flask.cli import AppGroup

from app.catalog import describe, registry, secrets
from app.catalog.names import normalize_model_name
from app.chat import forwarding
from app.cli.common import CommandFailed, audit_cli, require_current_schema
from app.errors import BadRequest, RelayError
from app.spend import prices
from app.surfaces.admin.model_schemas import REMOTE_TYPES, CreateSchema
from app.surfaces.schema import load


class ModelNameType(click.ParamType):
    """A model name as the HTTP API accepts it, refused with exit 2 otherwise."""

    name = "NAME"

    def convert(self, value, param, ctx):
        if normalize_model_name(value) is None:
            self.fail(
                f"{value!r} is not a valid model name (letters, digits, '_', '.', "
                f"'-', optional namespace/ and :tag)",
                param,
                ctx,
            )
        return value


@click.group("models", cls=AppGroup)
def models_group():
    """Remote models (the CLI twin of /api/create, /api/tags, /api/show, /api/delete)."""


def _summary(model):
    return {
        "name": model.name,
        "remote_type": model.remote_type,
        "remote_model": model.remote_model,
        "remote_host": model.remote_host,
        "parent_model": model.parent_model,
        "has_api_key": bool(model.api_key),
        "price": _shown_price(model),
    }


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def models_list(as_json):
    """One line per model: name, remote_type, remote_model, remote_host (tab-separated)."""
    require_current_schema()
    rows = [_summary(m) for m in registry.all_models()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            "\t".join(row[k] for k in ("name", "remote_type", "remote_model", "remote_host"))
        )


def _resolve(name):
    try:
        return registry.resolve(name)
    except RelayError as exc:
        raise CommandFailed(exc.message) from None


@models_group.command("show")
@click.argument("name", type=ModelNameType())
def models_show(name):
    """Print the JSON that /api/show returns for NAME."""
    require_current_schema()
    click.echo(json.dumps(describe.show(_resolve(name)), indent=2))


@models_group.command("delete")
@click.argument("name", type=ModelNameType())
def models_delete(name):
    """Delete the model NAME."""
    require_current_schema()
    try:
        registry.delete(name)
    except RelayError as exc:
        raise CommandFailed(exc.message) from None
    audit_cli("model.delete", normalize_model_name(name))
    click.echo(f"deleted {normalize_model_name(name)}")


def _parameters(pairs):
    """`key=value` pairs -> Ollama parameters; JSON values are typed, and a
    repeated key (e.g. stop) becomes a list, as repeated PARAMETER lines do."""
    parameters = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="'--parameter'")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        key = key.strip()
        if key in parameters:
            previous = parameters[key]
            value = (previous if isinstance(previous, list) else [previous]) + [value]
        parameters[key] = value
    return parameters


def _api_key(env_var, from_stdin):
    # Never an argv option: argv shows up in `ps` and shell history.
    if env_var and from_stdin:
        raise click.UsageError("--api-key-env and --api-key-stdin exclude each other")
    if env_var:
        key = os.environ.get(env_var, "").strip()
        if not key:
            raise click.BadParameter(
                f"environment variable {env_var} is not set or empty", param_hint="'--api-key-env'"
            )
        return key
    if from_stdin:
        stdin = click.get_text_stream("stdin")
        key = (
            click.prompt("API key", hide_input=True, err=True) if stdin.isatty() else stdin.read()
        ).strip()
        if not key:
            raise click.BadParameter("stdin held no key", param_hint="'--api-key-stdin'")
        return key
    return None


# Schema fields as the command line spells them, so errors name the option.
_OPTION_FOR_FIELD = {
    "model": "NAME",
    "name": "NAME",
    "from": "--from",
    "remote_host": "--remote-host",
    "remote_type": "--remote-type",
    "system": "--system",
    "parameters": "--parameter",
    "remote_api_key": "the API key",
    "fallbacks": "--fallback",
    "forward": "--forward",
    "max_n": "--max-n",
    "reasoning_none": "--no-reasoning-none",
    "price": "--price-input/--price-output",
    "price.input": "--price-input",
    "price.output": "--price-output",
    "price.cached_input": "--price-cached-input",
}


def _price(given_input, given_output, given_cached):
    given = {"input": given_input, "output": given_output, "cached_input": given_cached}
    given = {part: value for part, value in given.items() if value is not None}
    return given or None


def _shown_price(model):
    price = prices.of(model)
    return None if price is None else price.per_million()


def _usage_error(exc, key):
    text = exc.message.removeprefix("invalid request: ")
    if key:
        text = text.replace(key, "***")
    param = exc.param or ""
    option = _OPTION_FOR_FIELD.get(param) or _OPTION_FOR_FIELD.get(param.split(".")[0])
    return click.UsageError(f"{option or param or 'request'}: {text}")


@models_group.command("create")
@click.argument("name", type=ModelNameType())
@click.option(
    "--from",
    "from_",
    required=True,
    metavar="REMOTE_MODEL",
    help="The model id at the remote (e.g. qwen-plus).",
)
@click.option(
    "--remote-host",
    required=True,
    metavar="URL",
    help="Base URL of the remote (subject to RELAY_REMOTE_ALLOWLIST).",
)
@click.option("--remote-type", type=click.Choice(REMOTE_TYPES), default="ollama", show_default=True)
@click.option("--system", help="Default system prompt.")
@click.option(
    "--parameter",
    "parameters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Default option, repeatable; values are JSON when they parse as JSON.",
)
@click.option(
    "--fallback",
    "fallbacks",
    multiple=True,
    metavar="NAME",
    help="A local model tried when this one's remote fails (repeatable, in order).",
)
@click.option(
    "--fallback-on-auth-errors", is_flag=True, help="Fall back on the remote's 401/403/404 too."
)
@click.option("--price-input", metavar="AMOUNT", help="Price per million input tokens.")
@click.option("--price-output", metavar="AMOUNT", help="Price per million output tokens.")
@click.option(
    "--price-cached-input",
    metavar="AMOUNT",
    help="Price per million cached input tokens (default: the input price).",
)
@click.option(
    "--forward",
    "forward",
    multiple=True,
    type=click.Choice(forwarding.GOVERNED),
    help="A request field the provider may receive, which stores data or costs extra "
    "(repeatable; default: none of them).",
)
@click.option(
    "--max-n",
    type=click.IntRange(1, forwarding.MOST_N),
    help="The most choices (n) a request may ask for (default: 1).",
)
@click.option(
    "--no-reasoning-none",
    "no_reasoning_none",
    is_flag=True,
    help='The remote refuses reasoning_effort "none": drop it (reasoning stays on).',
)
@click.option("--api-key-env", metavar="VAR", help="Read the API key from this variable.")
@click.option("--api-key-stdin", is_flag=True, help="Read the API key from stdin.")
def models_create(
    name,
    from_,
    remote_host,
    remote_type,
    system,
    parameters,
    fallbacks,
    fallback_on_auth_errors,
    price_input,
    price_output,
    price_cached_input,
    forward,
    max_n,
    no_reasoning_none,
    api_key_env,
    api_key_stdin,
):
    """Create (or replace) the model NAME pointing at REMOTE_MODEL on URL."""
    key = _api_key(api_key_env, api_key_stdin)
    body = {
        "name": name,
        "from": from_,
        "remote_host": remote_host,
        "remote_type": remote_type,
        "system": system,
        "parameters": _parameters(parameters),
        "remote_api_key": key,
        "stream": False,
        "fallbacks": list(fallbacks) or None,
        "fallback_on_auth_errors": fallback_on_auth_errors,
        "price": _price(price_input, price_output, price_cached_input),
        "forward": list(forward) or None,
        "max_n": max_n,
        "reasoning_none": False if no_reasoning_none else None,
    }
    try:
        # The HTTP API's schema and registry: same validation, host policy, encryption.
        spec = load(CreateSchema(), body)
        require_current_schema()
        replacing = registry.exists(name)
        model = registry.create(spec)
    except BadRequest as exc:
        raise _usage_error(exc, key) from None
    audit_cli(
        "model.replace" if replacing else "model.create",
        model.name,
        remote_host=model.remote_host,
        price=_shown_price(model),
    )
    click.echo(f"created {model.name}")


@click.group("secrets", cls=AppGroup)
def secrets_group():
    """Encryption of stored API keys."""


@secrets_group.command("rotate")
def secrets_rotate():
    """Re-encrypt every stored API key under the first key of RELAY_SECRET_KEY."""
    from flask import current_app

    require_current_schema()
    try:
        count = secrets.rotate_all(current_app.extensions["relay.keyring"])
    except secrets.Undecryptable as exc:
        names = ", ".join(f"'{name}'" for name in exc.names)
        raise CommandFailed(
            f"the stored API key of model {names} cannot be decrypted with "
            f"any key in RELAY_SECRET_KEY; nothing was changed"
        ) from None
    audit_cli("secrets.rotate", "remote_api_keys", count=count)
    click.echo(f"re-encrypted {count} keys")
