"""`ollama-relay keys create|list|revoke`: client keys from the command line."""

import json

import click
from flask.cli import AppGroup

from app.access import audit, keys
from app.cli.common import CommandFailed, require_current_schema
from app.errors import RelayError
from app.surfaces.admin.key_schemas import CreateKeySchema
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
def keys_create(name, models, rpm, tpm, expires):
    """Create the key NAME and print it, alone on one line: it is shown only now."""
    require_current_schema()
    body = {
        "name": name,
        "models": list(models) or None,
        "rpm": rpm,
        "tpm": tpm,
        "expires": expires,
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
    """One line per key: name, models, rpm, tpm, expires, created, last used, revoked."""
    require_current_schema()
    rows = [keys.describe(row) for row in keys.all_keys()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = ("name", "models", "rpm", "tpm", "expires", "created_at", "last_used_at", "revoked")
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
