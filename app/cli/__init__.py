"""The `ollama-relay` command: Flask's CLI group plus the relay's own commands."""
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup
from peewee import PeeweeException

from app import create_app, db, registry
from app.cli_models import CommandFailed, models_group, secrets_group
from app.config import ConfigError
from app.errors import UpstreamError
from app.remotes import remote_for
from app.remotes.http import origin


def _create_app():
    # Commands manage the schema themselves; `db upgrade` must not depend on
    # the start-up migration it exists to run.
    return create_app({"RELAY_AUTO_MIGRATE": False})


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False,
             add_default_commands=False)
def cli():
    """Manage an ollama-relay installation.

    Exit codes: 0 success, 1 a lookup or check failed, 2 bad usage or
    configuration. Data is printed on stdout, failures on stderr.
    """


cli.add_command(models_group)
cli.add_command(secrets_group)


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
    from app import responses_store

    pruned = responses_store.prune(current_app.config["RELAY_RESPONSES_MAX_AGE_DAYS"])
    click.echo(f"pruned {pruned} expired responses")


def _report(ok, what, detail):
    click.echo(f"{'ok' if ok else 'FAIL'}\t{what}: {detail}")
    return ok


def _probe(model):
    """(ok, detail) for one model's remote: reachable and the key not refused."""
    try:
        keyring = current_app.extensions["relay.keyring"]
        key = keyring.decrypt(model.api_key) if model.api_key else None
    except ConfigError as exc:
        return False, str(exc)
    ok, detail = _call_remote(*remote_for(model).probe(), key)
    # The relay's messages never hold the key; an upstream echoing it is scrubbed
    # by RemoteHTTP.check, and once more here in case a message slips through.
    return ok, detail.replace(key, "***") if key else detail


def _call_remote(url, headers, key):
    # The app's own client: the host policy, proxy, CA bundle and timeouts
    # (RELAY_CONNECT_TIMEOUT, RELAY_READ_TIMEOUT) apply as they do to chat.
    http = current_app.extensions["relay.http"]
    try:
        response = http.request("GET", url, headers=headers, secret=key, check=False)
        if response.status_code in (401, 403):
            http.check(response, key)  # raises `API error (401): ...`, key scrubbed
    except UpstreamError as exc:
        rejected = exc.status in (401, 403)
        return False, (f"key rejected by {origin(url)}: " if rejected else "") + exc.message
    response.close()
    # Any other answer (even 404) proves the host is there and let us in.
    return True, f"{origin(url)} reachable (HTTP {response.status_code})"


def _check_database():
    try:
        pending = db.pending_migrations()
    except (PeeweeException, OSError) as exc:
        return _report(False, "database", f"unreachable: {_first_line(exc)}")
    if pending:
        return _report(False, "database", f"schema not current (pending: {', '.join(pending)}):"
                                          f" run `ollama-relay db upgrade`")
    return _report(True, "database", "answers, schema is current")


def _check_remotes():
    models = registry.all_models()
    if not models:
        return [_report(True, "models", "none defined")]
    results, seen = [], {}
    for model in models:
        # Derived models share their parent's remote and key: probe it once.
        target = (model.remote_type, model.remote_host, model.api_key)
        if target not in seen:
            seen[target] = _probe(model)
        ok, detail = seen[target]
        results.append(_report(ok, f"model {model.name!r}", detail))
    return results


@cli.command("check")
def check():
    """Check config, database and every model's remote; exit 0 only if all pass.

    For a deploy pipeline. Each remote gets one authenticated GET (openai:
    {remote_host}/models, ollama: {remote_host}/api/version); 401/403 fails
    as a rejected key. Set RELAY_READ_TIMEOUT low to bound the wait.
    """
    # Settings were validated when the app was created (a ConfigError exits 2).
    results = [_report(True, "config", "settings are valid")]
    results.append(_check_database())
    if results[-1]:
        results += _check_remotes()
    failed = results.count(False)
    if failed:
        raise CommandFailed(f"check failed: {failed} of {len(results)} checks failed")


def _first_line(exc):
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


def main():
    try:
        cli.main(prog_name="ollama-relay")
    except ConfigError as exc:
        click.echo(f"ollama-relay: configuration error: {exc}", err=True)
        sys.exit(2)
    except PeeweeException as exc:
        # A database that does not answer is a failed check, not a traceback.
        click.echo(f"ollama-relay: database error: {_first_line(exc)}", err=True)
        sys.exit(1)
