"""`ollama-relay teams create|list|update|delete`: teams of client keys."""

import json

import click
from flask.cli import AppGroup

from app.access import teams
from app.cli.common import CommandFailed, budget_options, given_changes, require_current_schema
from app.errors import RelayError
from app.surfaces.admin.key_schemas import CreateTeamSchema, UpdateTeamSchema
from app.surfaces.schema import load


@click.group("teams", cls=AppGroup)
def teams_group():
    """Teams of client keys (the CLI twin of /api/teams)."""


def _run(action, schema, body):
    require_current_schema()
    try:
        return action(load(schema, body), "admin", "cli")
    except RelayError as exc:
        text = exc.message.removeprefix("invalid request: ")
        if exc.status == 400:
            raise click.UsageError(text) from None
        raise CommandFailed(text) from None


@teams_group.command("create")
@click.argument("name")
@click.option("--model", "models", multiple=True, metavar="M", help="A model its keys may use.")
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute, shared.")
@click.option("--tpm", type=click.IntRange(min=1), help="Tokens per minute, shared.")
@budget_options
def teams_create(name, models, rpm, tpm, budget, period):
    """Create the team NAME."""
    body = {"name": name, "models": list(models) or None, "rpm": rpm, "tpm": tpm}
    if budget or period:
        body.update(budget=budget, period=period)
    _run(teams.create, CreateTeamSchema(), body)
    click.echo(f"created team {name}")


@teams_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def teams_list(as_json):
    """One line per team: name, models, rpm, tpm, budget, period, created."""
    require_current_schema()
    rows = [teams.describe(row) for row in teams.all_teams()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = ("name", "models", "rpm", "tpm", "budget", "period", "created_at")
    click.echo("\t".join(columns))
    for row in rows:
        cells = (row[c] for c in columns)
        click.echo(
            "\t".join(
                "-" if v is None else ",".join(v) if isinstance(v, list) else str(v) for v in cells
            )
        )


@teams_group.command("update")
@click.argument("name")
@click.option("--model", "models", multiple=True, metavar="M", help="Replace the model list.")
@click.option("--all-models", is_flag=True, help="Let its keys use every model.")
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute, shared.")
@click.option("--no-rpm", is_flag=True, help="No shared requests-per-minute limit.")
@click.option("--tpm", type=click.IntRange(min=1), help="Tokens per minute, shared.")
@click.option("--no-tpm", is_flag=True, help="No shared tokens-per-minute limit.")
@budget_options
@click.option("--no-budget", is_flag=True, help="Remove the team's budget.")
def teams_update(name, models, all_models, rpm, no_rpm, tpm, no_tpm, budget, period, no_budget):
    """Change the team NAME; what is not given stays as it is."""
    body = dict(
        name=name,
        **given_changes(
            models=(models, all_models),
            rpm=(rpm, no_rpm),
            tpm=(tpm, no_tpm),
            budget=(budget, no_budget),
            period=(period, False),
        ),
    )
    _run(teams.update, UpdateTeamSchema(), body)
    click.echo(f"updated team {name}")


@teams_group.command("delete")
@click.argument("name")
def teams_delete(name):
    """Delete the team NAME (refused while keys belong to it)."""
    require_current_schema()
    try:
        teams.delete(name, "admin", "cli")
    except RelayError as exc:
        raise CommandFailed(exc.message) from None
    click.echo(f"deleted team {name}")
