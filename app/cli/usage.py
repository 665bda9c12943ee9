"""`ollama-relay usage`: requests and tokens per key, model and UTC day."""

import json

import click
from flask.cli import with_appcontext

from app.access import usage as usage_rows
from app.cli.common import require_current_schema

_COLUMNS = ("day", "key", "model", "requests", "input_tokens", "output_tokens", "errors")


@click.command("usage")
@with_appcontext
@click.option("--since", metavar="YYYY-MM-DD", help="First UTC day to show.")
@click.option("--key", "key_name", metavar="NAME", help="Only this key ('-': auth off).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of rows.")
def usage_command(since, key_name, as_json):
    """Usage rows (workers write theirs every second)."""
    if since is not None:
        try:
            click.DateTime(["%Y-%m-%d"]).convert(since, None, None)
        except click.BadParameter:
            raise click.BadParameter(
                f"{since!r} is not a date YYYY-MM-DD", param_hint="'--since'"
            ) from None
    require_current_schema()
    rows = usage_rows.rows(since, key_name)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo("\t".join(_COLUMNS))
    for row in rows:
        click.echo("\t".join(str(row[c]) for c in _COLUMNS))
