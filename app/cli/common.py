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
