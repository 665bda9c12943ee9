"""`ollama-relay check`: configuration, database and every model's remote."""

import click
from flask import current_app
from flask.cli import with_appcontext
from peewee import PeeweeException

from app.catalog import registry
from app.cli.common import CommandFailed, first_line
from app.config import ConfigError
from app.errors import UpstreamError
from app.remotes.http.client import origin
from app.routing import remote_for
from app.storage import db


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
        return _report(False, "database", f"unreachable: {first_line(exc)}")
    if pending:
        return _report(
            False,
            "database",
            f"schema not current (pending: {', '.join(pending)}): run `ollama-relay db upgrade`",
        )
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


@click.command("check")
@with_appcontext
def check_command():
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
