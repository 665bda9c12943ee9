"""Who is signed in to the console: a signed cookie that holds no secret.

The cookie holds the role, the key's name and identity (a prefix of its
hash) or, for the admin, a keyed fingerprint of the admin token's digest,
and the session's CSRF nonce; it is signed with a secret derived from
RELAY_SECRET_KEY and expires after RELAY_CONSOLE_SESSION_HOURS. Each page
checks it again: a revoked or expired key, or an admin token taken out of
RELAY_ADMIN_TOKEN, ends its sessions at once.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.access import ANONYMOUS, Caller
from app.access import keys as client_keys
from app.access.guard import ADMIN, CONSOLE

CONSOLE_PREFIX = CONSOLE
COOKIE = "relay_console"


@dataclass(frozen=True)
class Session:
    role: str | None  # "admin", "key", or None: not signed in
    name: str | None
    ref: str | None
    nonce: str  # the CSRF token of this session's forms


def fresh(role=None, name=None, ref=None):
    return Session(role, name, ref, secrets.token_urlsafe(24))


def _keyring():
    return current_app.extensions["relay.keyring"]


def _serializer():
    return URLSafeTimedSerializer(_keyring().derived("console-session"), salt="relay-console")


def max_age():
    return int(current_app.config["RELAY_CONSOLE_SESSION_HOURS"] * 3600)


def read():
    """This request's session, or None (none, forged, or expired)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=max_age())
        return Session(data["r"], data["n"], data["f"], data["c"])
    except (BadSignature, KeyError, TypeError):
        return None


def _secure():
    # Over TLS, or behind the trusted proxy (which serves the console over TLS).
    return request.is_secure or current_app.config["RELAY_TRUSTED_PROXIES"] > 0


def write(response, session):
    value = _serializer().dumps(
        {"r": session.role, "n": session.name, "f": session.ref, "c": session.nonce}
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age(),
        path=CONSOLE_PREFIX,
        secure=_secure(),
        httponly=True,
        samesite="Strict",
    )


def clear(response):
    response.delete_cookie(
        COOKIE, path=CONSOLE_PREFIX, secure=_secure(), httponly=True, samesite="Strict"
    )


def admin_fingerprint(token_digest):
    """What an admin's session holds of the token: keyed, so a cookie tells
    nothing of the token, and checked against the tokens of now."""
    key = _keyring().derived("console-admin")
    return hmac.new(key, token_digest.encode(), hashlib.sha256).hexdigest()


def for_caller(who, token_digest):
    """A new session for a caller the gate accepted."""
    if who.admin:
        return fresh("admin", "admin", admin_fingerprint(token_digest))
    return fresh("key", who.name, who.key.identity)


def caller_of(session, gate):
    """The Caller a session stands for while it is valid, else None."""
    if not gate.auth:
        return ANONYMOUS
    if session is None or session.role is None or not session.ref:
        return None
    if session.role == "admin":
        prints = [admin_fingerprint(d) for d in gate.admin_digests()]
        matches = [hmac.compare_digest(session.ref, p) for p in prints]
        return ADMIN if any(matches) else None
    if session.role == "key":
        record = client_keys.signed_in(session.name, session.ref)
        return None if record is None else Caller(record.name, admin=False, key=record)
    return None
