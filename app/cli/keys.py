"""`ollama-relay keys create|list|update|revoke`: client keys from the command line."""

import json

import click
from flask.cli import AppGroup

from app.access import audit, keys
from app.cli.common import CommandFailed, budget_options, given_changes, require_current_schema
from app.errors import RelayError
from app.surfaces.admin.key_schemas import CreateKeySchema, UpdateKeySchema
from app.surfaces.schema import load


@click.group("keys", cls=AppGroup)
def keys_group():
    """Client keys (the CLI twin of /api/keys)."""


@keys_group.command("create")
@click.argument("name")
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="M",
    help="A model the key may use (repeatable); without it, every model.",
)
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute.")
@click.option("--tpm", type=click.IntRange(min=1), help="Tokens per minute (in + out).")
@click.option("--expires", metavar="YYYY-MM-DD", help="Last UTC day the key works.")
@click.option("--team", metavar="TEAM", help="The team the key belongs to.")
@budget_options
def keys_create(name, models, rpm, tpm, expires, team, budget, period):
    """Create the key NAME and print it, alone on one line: it is shown only now."""
    require_current_schema()
    body = {
        "name": name,
        "models": list(models) or None,
        "rpm": rpm,
        "tpm": tpm,
        "expires": expires,
        "team": team,
        **({"budget": budget, "period": period} if budget or period else {}),
    }
    try:
        _, secret = keys.issue(load(CreateKeySchema(), body), "admin", "cli")
    except RelayError as exc:
        text = exc.message.removeprefix("invalid request: ")
        if exc.status == 400:
            raise click.UsageError(text)
        raise CommandFailed(text) from None
    click.echo(secret)


def _cell(value):
    if value is None:
        return "-"
    return ",".join(value) if isinstance(value, list) else str(value)


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def keys_list(as_json):
    """One line per key: name, models, rpm, tpm, expires, created, last used, revoked, team."""
    require_current_schema()
    rows = [keys.describe(row) for row in keys.all_keys()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = (
        "name",
        "models",
        "rpm",
        "tpm",
        "expires",
        "created_at",
        "last_used_at",
        "revoked",
        "team",
        "budget",
        "period",
        "capture",
    )
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join(_cell(row[c]) for c in columns))


@keys_group.command("revoke")
@click.argument("name")
def keys_revoke(name):
    """Revoke the key NAME: every worker and host refuses it within 2 seconds."""
    require_current_schema()
    try:
        keys.revoke(name)
    except keys.KeyProblem as exc:
        raise CommandFailed(str(exc)) from None
    audit.record("admin", "key.revoke", name, via="cli")
    click.echo(f"revoked {name}")


@keys_group.command("update")
@click.argument("name")
@click.option("--model", "models", multiple=True, metavar="M", help="Replace the model list.")
@click.option("--all-models", is_flag=True, help="Let the key use every model.")
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute.")
@click.option("--no-rpm", is_flag=True, help="No requests-per-minute limit.")
@click.option("--tpm", type=click.IntRange(min=1), help="Tokens per minute (in + out).")
@click.option("--no-tpm", is_flag=True, help="No tokens-per-minute limit.")
@click.option("--expires", metavar="YYYY-MM-DD", help="Last UTC day the key works.")
@click.option("--team", metavar="TEAM", help="Move the key into TEAM.")
@click.option("--no-team", is_flag=True, help="Take the key out of its team.")
@budget_options
@click.option("--no-budget", is_flag=True, help="Remove the key's budget.")
@click.option(
    "--capture",
    type=click.Choice(("off", "errors", "all", "default")),
    help="Payload capture for the key's requests (default: as RELAY_CAPTURE says).",
)
def keys_update(
    name,
    models,
    all_models,
    rpm,
    no_rpm,
    tpm,
    no_tpm,
    expires,
    team,
    no_team,
    budget,
    period,
    no_budget,
    capture,
):
    """Change the key NAME; what is not given stays as it is."""
    require_current_schema()
    body = dict(
        name=name,
        **given_changes(
            models=(models, all_models),
            rpm=(rpm, no_rpm),
            tpm=(tpm, no_tpm),
            expires=(expires, False),
            team=(team, no_team),
            budget=(budget, no_budget),
            period=(period, False),
            capture=(None if capture == "default" else capture, capture == "default"),
        ),
    )
    try:
        keys.update(load(UpdateKeySchema(), body), "admin", "cli")
    except RelayError as exc:
        raise CommandFailed(exc.message.removeprefix("invalid request: ")) from None
    click.echo(f"updated {name}")
