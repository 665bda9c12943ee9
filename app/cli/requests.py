"""`ollama-relay requests [filters]`, `requests show ID`, `requests prune`:
the request log from the command line (the CLI twin of /api/requests)."""

import json

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from app.cli.common import CommandFailed, audit_cli, require_current_schema
from app.observability import request_log
from app.observability import request_queries as queries
from app.spend import money

_COLUMNS = (
    "id",
    "time",
    "key",
    "team",
    "model",
    "surface",
    "stream",
    "status",
    "error_code",
    "latency_ms",
    "ttfb_ms",
    "input_tokens",
    "output_tokens",
    "cost",
    "retries",
    "fallback",
    "request_id",
)


def _parsed(options):
    try:
        return queries.parse(options)
    except queries.FilterError as exc:
        raise click.BadParameter(exc.rule, param_hint=f"'--{exc.field.replace('_', '-')}'")


def _cell(name, value):
    if value is None:
        return "-"
    if name == "cost":
        return money.shown(money.to_pico(value))
    return str(value).lower() if isinstance(value, bool) else str(value)


@click.group("requests", cls=AppGroup, invoke_without_command=True)
@click.option("--since", metavar="WHEN", help="From (ISO 8601 date or time, UTC; or 30m, 2h, 7d).")
@click.option("--until", metavar="WHEN", help="Before (same forms as --since).")
@click.option("--key", metavar="NAME", help="Only this key ('admin'; '-': auth off).")
@click.option("--team", metavar="TEAM", help="Only this team ('-': keys in none).")
@click.option("--model", metavar="M", help="Only this local model.")
@click.option("--status", metavar="S", help="A status (429) or a class (5xx, 4xx, 2xx).")
@click.option("--slower-than", metavar="D", help="Latency above D: 2s, 1.5s, 500ms, 2m.")
@click.option("--cursor", metavar="C", help="Continue from a --json page's next_cursor.")
@click.option("--json", "as_json", is_flag=True, help='Print {"requests": [...], "next_cursor"}.')
@click.option(
    "--limit",
    type=click.IntRange(1, queries.MAX_LIMIT),
    default=queries.DEFAULT_LIMIT,
    show_default=True,
    help="Rows to print (newest first).",
)
@click.pass_context
@with_appcontext
def requests_group(ctx, as_json, limit, **options):
    """The request log, newest first: one row per request that named a model
    (workers write theirs every second). No prompt or answer text."""
    if ctx.invoked_subcommand is not None:
        return
    filters = _parsed(options)
    require_current_schema()
    rows, following = queries.page(filters, limit, current_app.config["RELAY_CURRENCY"])
    if as_json:
        click.echo(json.dumps({"requests": rows, "next_cursor": following}, indent=2))
        return
    click.echo("\t".join(_COLUMNS))
    for row in rows:
        click.echo("\t".join(_cell(c, row[c]) for c in _COLUMNS))


@requests_group.command("show")
@click.argument("row")
def requests_show(row):
    """One request as JSON, with its captured payloads if any: ROW is a row's
    id, or a request id (X-Request-ID; the newest row that has it)."""
    require_current_schema()
    currency = current_app.config["RELAY_CURRENCY"]
    ids = queries.ids_of(row)
    if not ids and row.isascii() and row.isdigit() and len(row) < 19:
        ids = [int(row)]
    found = queries.one(ids[0], currency) if ids else None
    if found is None:
        raise CommandFailed(f"no request log row '{row}'")
    if found["capture"] is not None:
        audit_cli("request.show", str(found["id"]))
    click.echo(json.dumps(found, indent=2))


@requests_group.command("prune")
def requests_prune():
    """Delete rows older than RELAY_REQUEST_LOG_DAYS and captures older than
    RELAY_CAPTURE_DAYS now (workers also do it every few minutes)."""
    require_current_schema()
    settings = current_app.config
    request_log.prune(settings["RELAY_REQUEST_LOG_DAYS"], settings["RELAY_CAPTURE_DAYS"])
    click.echo("pruned")
