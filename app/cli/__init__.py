"""The `ollama-relay` command: Flask's CLI group plus the relay's own commands
(one module per family: models and secrets, keys, usage, check)."""

import sys

import click
from flask import current_app
from flask.cli import FlaskGroup
from peewee import PeeweeException

from app import create_app
from app.cli.check import check_command
from app.cli.common import audit_cli, first_line
from app.cli.keys import keys_group
from app.cli.models import models_group, secrets_group
from app.cli.prices import prices_group
from app.cli.requests import requests_group
from app.cli.teams import teams_group
from app.cli.usage import usage_command
from app.config import ConfigError
from app.storage import db


def _create_app():
    # Commands manage the schema themselves; `db upgrade` must not depend on
    # the start-up migration it exists to run.
    return create_app({"RELAY_AUTO_MIGRATE": False})


@click.group(
    cls=FlaskGroup, create_app=_create_app, add_version_option=False, add_default_commands=False
)
def cli():
    """Manage an ollama-relay installation.

    Exit codes: 0 success, 1 a lookup or check failed, 2 bad usage or
    configuration. Data is printed on stdout, failures on stderr.
    """


for command in (
    models_group,
    secrets_group,
    prices_group,
    teams_group,
    keys_group,
    usage_command,
    requests_group,
    check_command,
):
    cli.add_command(command)


@cli.group("db")
def db_group():
    """Database schema."""


@db_group.command("upgrade")
def db_upgrade():
    """Apply pending migrations (safe while the service runs)."""
    applied = db.upgrade()
    click.echo("applied: " + ", ".join(applied) if applied else "schema is current")


@cli.group("responses")
def responses_group():
    """Stored Responses API responses."""


@responses_group.command("prune")
def responses_prune():
    """Delete stored responses older than RELAY_RESPONSES_MAX_AGE_DAYS."""
    from app.surfaces.responses import store as responses_store

    pruned = responses_store.prune(current_app.config["RELAY_RESPONSES_MAX_AGE_DAYS"])
    audit_cli("responses.prune", "responses", count=pruned)
    click.echo(f"pruned {pruned} expired responses")


def main():
    try:
        cli.main(prog_name="ollama-relay")
    except ConfigError as exc:
        click.echo(f"ollama-relay: configuration error: {exc}", err=True)
        sys.exit(2)
    except PeeweeException as exc:
        # A database that does not answer is a failed check, not a traceback.
        click.echo(f"ollama-relay: database error: {first_line(exc)}", err=True)
        sys.exit(1)
