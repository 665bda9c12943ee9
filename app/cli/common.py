"""What the CLI commands share: exit codes, the schema check, audit lines.

Exit codes a shell script can rely on: 0 success, 1 a lookup or check
failed, 2 bad usage or configuration. Data goes to stdout, failures to
stderr, and no output ever carries an API key.
"""

import click

from app.access import audit
from app.storage import db


class CommandFailed(click.ClickException):
    """Exit 1: a lookup or check failed (usage errors are click's, exit 2)."""

    exit_code = 1

    def show(self, file=None):
        click.echo(f"ollama-relay: {self.message}", err=True)


def require_current_schema():
    # The CLI never migrates implicitly (RELAY_AUTO_MIGRATE is off for it), so
    # say what to run instead of failing on a missing table.
    pending = db.pending_migrations()
    if pending:
        raise CommandFailed(
            f"database schema is not current (pending: {', '.join(pending)}): "
            f"run `ollama-relay db upgrade`"
        )


def audit_cli(action, obj, **details):
    # Whoever runs the CLI holds the service's secrets: they act as the admin.
    audit.record("admin", action, obj, via="cli", **details)


def first_line(exc):
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


def given_changes(**options):
    """The fields an update names: given options, and --no-X / --all-models as null."""
    spec = {}
    for field, (value, cleared) in options.items():
        if cleared:
            spec[field] = None
        elif value not in (None, ()):
            spec[field] = list(value) if isinstance(value, tuple) else value
    return spec


def budget_options(command):
    """--budget AMOUNT --period day|month|total (and --no-budget on updates)."""
    command = click.option(
        "--period", type=click.Choice(("day", "month", "total")), help="The budget's period (UTC)."
    )(command)
    return click.option("--budget", metavar="AMOUNT", help="Budget in RELAY_CURRENCY per period.")(
        command
    )
