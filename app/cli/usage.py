"""`ollama-relay usage`: requests, tokens and cost per key, model and UTC day."""

import json

import click
from flask import current_app
from flask.cli import with_appcontext

from app.access import usage as usage_rows
from app.access import usage_report
from app.cli.common import require_current_schema
from app.spend import money

_COUNTS = ("requests", "input_tokens", "output_tokens", "errors", "cost")


@click.command("usage")
@with_appcontext
@click.option("--since", metavar="YYYY-MM-DD", help="First UTC day to show.")
@click.option("--key", "key_name", metavar="NAME", help="Only this key ('-': auth off).")
@click.option("--team", metavar="TEAM", help="Only this team's keys ('-': keys in none).")
@click.option(
    "--by",
    type=click.Choice(usage_rows.GROUPS),
    help="One row per key, model, team or day, summed (charge-back).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json", "csv")),
    default="table",
    help="table (cost rounded for reading), json or csv (exact cost).",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def usage_command(since, key_name, team, by, fmt, as_json):
    """Usage rows (workers write theirs every second)."""
    if since is not None:
        try:
            click.DateTime(["%Y-%m-%d"]).convert(since, None, None)
        except click.BadParameter:
            raise click.BadParameter(
                f"{since!r} is not a date YYYY-MM-DD", param_hint="'--since'"
            ) from None
    require_current_schema()
    rows = usage_rows.rows(since, key_name, current_app.config["RELAY_CURRENCY"], team)
    if by:
        rows = usage_rows.grouped(rows, by)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    columns = (*(c for c in usage_rows.KEY_COLUMNS if not by or c == by), *_COUNTS, "currency")
    if fmt == "csv":
        # The console's export writes the same text (app/access/usage_report.py).
        click.echo(usage_report.csv_text(rows, by), nl=False)
        return
    # The table rounds cost for reading (money.DISPLAY_PLACES); `*`: some of the
    # row's requests were to a model without a price, and cost nothing here.
    click.echo("\t".join(columns))
    for row in rows:
        cells = [
            money.shown(money.to_pico(row[c])) if c == "cost" else str(row[c]) for c in columns
        ]
        if row["unpriced"]:
            cells[columns.index("cost")] += "*"
        click.echo("\t".join(cells))
