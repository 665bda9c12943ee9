"""The `ollama-relay` command: Flask's CLI group plus the relay's own commands."""
import sys

import click
from flask.cli import FlaskGroup

from app import create_app, db
from app.config import ConfigError


def _create_app():
    # Commands manage the schema themselves; `db upgrade` must not depend on
    # the start-up migration it exists to run.
    return create_app({"RELAY_AUTO_MIGRATE": False})


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False,
             add_default_commands=False)
def cli():
    """Manage an ollama-relay installation."""


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
    from flask import current_app

    from app import responses_store

    pruned = responses_store.prune(current_app.config["RELAY_RESPONSES_MAX_AGE_DAYS"])
    click.echo(f"pruned {pruned} expired responses")


def main():
    try:
        cli.main(prog_name="ollama-relay")
    except ConfigError as exc:
        click.echo(f"ollama-relay: configuration error: {exc}", err=True)
        sys.exit(2)
