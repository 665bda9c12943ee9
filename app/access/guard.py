"""Who is calling, and may they: run before every view.

In order: the browser Origin (refused before anything runs); for an open
relay, the peer (this machine only, unless RELAY_ALLOW_UNAUTHENTICATED=1)
and the Host (DNS rebinding); then the key, and for a request that will call
a model, its rate limits: all before the body is read. With RELAY_ADMIN_TOKEN
unset the relay is open and every caller is the anonymous admin `-`, as
with Ollama.
"""

import hmac
from dataclasses import dataclass
from functools import wraps

from flask import current_app, g, request

from app.access import origins
from app.access.keys import KeyRecord, digest
from app.catalog.names import normalize_model_name
from app.errors import Forbidden, Unauthorized
from app.observability import telemetry

# What load balancers and version probes call without a key. (/metrics has
# its own rule: see _check_metrics.)
PUBLIC = {"/", "/api/version", "/api/status", "/healthz", "/readyz", "/openapi.json"}
METRICS = "/metrics"
# The web console (app/console/) signs its users in with a session cookie,
# checked by its own before_request, not with a key in a header.
CONSOLE = "/console"


@dataclass(frozen=True)
class Caller:
    name: str  # "admin", a key's name, or "-" when auth is off
    admin: bool
    key: KeyRecord = None

    def may_use(self, model_name):
        return self.key is None or self.key.may_use(normalize_model_name(model_name))

    @property
    def owner(self):
        """Whose stored responses this caller's are: the key itself, so that a
        new key given a revoked key's name does not inherit its conversations."""
        return f"key:{self.key.identity}" if self.key is not None else self.name

    @property
    def sees_everything(self):
        """Stored responses of every key (the admin, and everyone when auth is off)."""
        return self.admin


ANONYMOUS = Caller("-", admin=True)
ADMIN = Caller("admin", admin=True)


class Gate:
    """The settings and caches the checks need; one per app."""

    def __init__(self, settings, keys, book):
        self.auth = bool(settings["RELAY_ADMIN_TOKEN"])
        self.open_to_all = settings["RELAY_ALLOW_UNAUTHENTICATED"]
        self._admin_digests = [digest(t) for t in settings["RELAY_ADMIN_TOKEN"]]
        self._metrics_digests = [digest(t) for t in settings["RELAY_METRICS_TOKEN"]]
        self.origins = origins.OriginPolicy(settings["RELAY_ORIGINS"])
        self.hosts = origins.HostPolicy(settings["RELAY_ALLOWED_HOSTS"])
        self.keys = keys
        self.book = book

    def admin_digests(self):
        return list(self._admin_digests)

    def _is_admin(self, presented):
        return _any_of(presented, self._admin_digests)

    def may_scrape(self, secret):
        """Whether `secret` may read /metrics: an admin or a metrics token."""
        if secret is None:
            return False
        hashed = digest(secret)
        return _any_of(hashed, self._metrics_digests) or self._is_admin(hashed)

    def identify(self, secret):
        if secret is None:
            raise Unauthorized(
                "an API key is required: send it as Authorization: Bearer "
                "<key> (or in an x-api-key or api-key header)"
            )
        hashed = digest(secret)  # once, for both
        if self._is_admin(hashed):
            return ADMIN
        key = self.keys.find(hashed)
        if key is None:
            raise Unauthorized("invalid API key")
        if key.revoked:
            raise Unauthorized(f"API key '{key.name}' has been revoked")
        if key.expired():
            raise Unauthorized(f"API key '{key.name}' has expired")
        self.book.touch(key.name)
        return Caller(key.name, admin=False, key=key)


def _any_of(presented, digests):
    # Every token compared, each in constant time: neither a match nor its
    # position shows in the timing.
    matches = [hmac.compare_digest(presented, d) for d in digests]
    return any(matches)


def _presented_key(headers):
    authorization = headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return headers.get("x-api-key") or headers.get("api-key") or None


def gate():
    return current_app.extensions["relay.gate"]


def caller():
    """Who is making this request (set before every view)."""
    return g.get("caller", ANONYMOUS)


def check_request():
    """before_request: the Origin, the Host, then the key."""
    gate_ = gate()
    origin = request.headers.get("Origin")
    console = _is_console(request.path)
    if origin is not None and not gate_.origins.allows(origin) and not _own_page(console, origin):
        raise Forbidden(
            f"origin {origin!r} is not allowed: list it in RELAY_ORIGINS", code="origin_not_allowed"
        )
    if not gate_.auth:
        _check_open_relay(gate_)
    if request.method == "OPTIONS":
        if origin is not None and request.headers.get("Access-Control-Request-Method"):
            requested = request.headers.get("Access-Control-Request-Headers")
            return "", 204, origins.preflight_headers(origin, requested)
        return None  # Flask answers a plain OPTIONS with Allow
    if not gate_.auth or console:
        return None
    if request.method in ("GET", "HEAD"):
        if request.path in PUBLIC:
            return None
        if request.path == METRICS:
            return _check_metrics(gate_)
    g.caller = gate_.identify(_presented_key(request.headers))
    exchange = telemetry.current()
    exchange.key = g.caller.name
    if g.caller.key is not None:
        exchange.team = g.caller.key.team_name
        if g.caller.key.capture is not None:
            exchange.capture = None if g.caller.key.capture == "off" else g.caller.key.capture
    _check_rate_limits(g.caller)
    return None


def _is_console(path):
    return path == CONSOLE or path.startswith(CONSOLE + "/")


def _own_page(console, origin):
    """A console form posts from the relay's own origin, whatever name it is
    reached by (behind nginx: https://relay.internal)."""
    return console and origin.strip().lower() == f"{request.scheme}://{request.host}".lower()


def _check_open_relay(gate_):
    """An open relay answers this machine only (unless told otherwise), and
    only requests that name it by a loopback Host: a web page whose name was
    rebound to 127.0.0.1 sends its own name, or one werkzeug cannot parse
    (request.host is then empty), so the raw header is what is judged."""
    peer = request.remote_addr
    # No address: a Unix socket, which only this machine can reach.
    if peer and not gate_.open_to_all and not origins.is_loopback(peer):
        raise Forbidden(
            f"this relay has no RELAY_ADMIN_TOKEN, so it answers only clients on its own "
            f"machine, and {peer} is not one: set RELAY_ADMIN_TOKEN to require keys, or "
            f"RELAY_ALLOW_UNAUTHENTICATED=1 to serve every client without them",
            code="open_relay_not_local",
        )
    host = request.environ.get("HTTP_HOST")
    if not gate_.hosts.allows(host):
        raise Forbidden(
            f"host {host!r} is not allowed for an open relay: list it in "
            f"RELAY_ALLOWED_HOSTS, or set RELAY_ADMIN_TOKEN",
            code="host_not_allowed",
        )


def _check_metrics(gate_):
    """/metrics names keys, models and remotes: with keys on, it is for this
    machine (a local Prometheus or agent), or for whoever sends the admin
    token or RELAY_METRICS_TOKEN (Prometheus' `authorization:`)."""
    peer = request.remote_addr
    if not peer or origins.is_loopback(peer):
        return None
    if gate_.may_scrape(_presented_key(request.headers)):
        return None
    raise Unauthorized(
        "/metrics needs RELAY_METRICS_TOKEN or the admin token (Authorization: Bearer "
        "<token>) from a client that is not on the relay's machine"
    )


def _check_rate_limits(who):
    """A key over its rpm or tpm is refused before the body of a request
    that would call a model is read: reading and parsing a large body costs
    far more than the refusal. (admit() spends the request later, after the
    key was found to allow the model.)"""
    key = who.key
    if not _limited(key):
        return
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, "calls_a_model", False):
        current_app.extensions["relay.limiter"].check(key)


def calls_a_model(view):
    """Marks a view that calls a model (and so spends rate limits)."""
    view.calls_a_model = True
    return view


def add_cors_headers(response):
    """after_request: an allowed Origin may read the answer."""
    origin = request.headers.get("Origin")
    if origin is not None and "Access-Control-Allow-Origin" not in response.headers:
        if gate().origins.allows(origin):
            response.headers.update(origins.response_headers(origin))
    return response


def admin_only(view):
    """For management views: a client key gets 403."""

    @wraps(view)
    def checked(*args, **kwargs):
        who = caller()
        if not who.admin:
            raise Forbidden(
                f"key '{who.name}' may not {request.method} {request.path}: it is "
                f"for the admin only",
                code="admin_only",
            )
        return view(*args, **kwargs)

    return checked


def permit_model(name):
    """403 unless the caller's key may use the model `name` (checked before
    the model is looked up, so a key learns nothing of models it may not use)."""
    who = caller()
    if not who.may_use(name):
        raise Forbidden(
            f"key '{who.name}' may not use model '{name}'", param="model", code="model_not_allowed"
        )


def admit():
    """Count this request against the caller's and its team's rate limits (429 when over)."""
    key = caller().key
    if _limited(key):
        current_app.extensions["relay.limiter"].admit(key)


def _limited(key):
    """Whether a request with `key` has rpm or tpm to count (its own, its team's)."""
    if key is None:
        return False
    return bool(key.rpm or key.tpm or (key.team and (key.team.rpm or key.team.tpm)))


def budgets():
    """The budgets this request falls under: its key's and its team's."""
    key = caller().key
    if key is None:
        return []
    team = key.team.budget if key.team is not None else None
    return [b for b in (key.budget, team) if b is not None]
