"""Browsers: which web origins may call the relay, and which Host names an
open relay answers.

Any page the user visits can send requests to 127.0.0.1:11434. A "simple"
cross-origin POST (Content-Type text/plain) needs no CORS preflight, so the
relay itself must refuse origins it does not know, before anything runs.
DNS rebinding makes a hostile name resolve to 127.0.0.1; the Host header
still carries that name, so an open relay answers only loopback names.
"""

import ipaddress
import re

# Ollama allows the same by default (OLLAMA_ORIGINS adds to it).
DEFAULT_ORIGINS = (
    "http://localhost:*",
    "https://localhost:*",
    "http://127.0.0.1:*",
    "https://127.0.0.1:*",
    "http://[::1]:*",
    "https://[::1]:*",
)

# What a preflight may ask for: every method the relay serves, and the
# headers our clients send (keys, content, SDK and API-version headers).
ALLOW_METHODS = "GET, POST, DELETE, HEAD, OPTIONS"
ALLOW_HEADERS = (
    "Authorization, Content-Type, Content-Encoding, X-Api-Key, Api-Key, "
    "X-Request-ID, OpenAI-Organization, OpenAI-Project, OpenAI-Beta, "
    "Anthropic-Version, Anthropic-Beta, Anthropic-Dangerous-Direct-Browser-Access, "
    "X-Stainless-Arch, X-Stainless-Lang, X-Stainless-OS, X-Stainless-Package-Version, "
    "X-Stainless-Retry-Count, X-Stainless-Runtime, X-Stainless-Runtime-Version, "
    "X-Stainless-Timeout, X-Stainless-Async, X-Stainless-Helper-Method, User-Agent"
)
EXPOSE_HEADERS = (
    "X-Request-ID, Retry-After, x-ratelimit-limit-requests, "
    "x-ratelimit-remaining-requests, x-ratelimit-reset-requests, "
    "x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, "
    "x-ratelimit-reset-tokens"
)


def _pattern(glob):
    """`*` matches anything (a port, a subdomain, an extension id); the rest is literal."""
    parts = (re.escape(part) for part in glob.lower().split("*"))
    return re.compile("^" + ".*".join(parts) + "$")


class OriginPolicy:
    def __init__(self, extra=()):
        globs = DEFAULT_ORIGINS + tuple(extra)
        # A default glob "http://localhost:*" must also match "http://localhost".
        globs += tuple(g[:-2] for g in DEFAULT_ORIGINS)
        self._patterns = [_pattern(g) for g in globs]

    def allows(self, origin):
        origin = origin.strip().lower()
        return any(p.match(origin) for p in self._patterns)


def preflight_headers(origin, requested_headers):
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
    if requested_headers:
        # SDKs add headers we cannot list ahead (x-stainless-*): an allowed
        # origin may send what it asks for.
        headers["Access-Control-Allow-Headers"] = requested_headers
    return headers


def response_headers(origin):
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
        "Vary": "Origin",
    }


# What a Host header may be: a name (letters, digits, '-', '.'), an IPv4
# address or a bracketed IPv6 address, and an optional port. Anything else
# (empty, a '_', '@', ',' or a second ':', which werkzeug turns into an empty
# request.host) names no host this relay knows.
_HOST = re.compile(r"(?P<name>\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::[0-9]{1,5})?")


def _host_name(host):
    """The name in a raw Host header, without port or IPv6 brackets; None
    when the header is not a well-formed host[:port]."""
    match = _HOST.fullmatch(host.strip().lower())
    if match is None:
        return None
    return match["name"].strip("[]").rstrip(".")


def is_loopback(address):
    """Whether a peer address (REMOTE_ADDR) is this machine's loopback."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


class HostPolicy:
    """Host names an open (unauthenticated) relay answers."""

    def __init__(self, extra=()):
        self._patterns = [_pattern(g) for g in extra]

    def allows(self, host):
        """`host` is the raw header (None when the request has none): only a
        loopback name or address, or one RELAY_ALLOWED_HOSTS lists, passes."""
        name = _host_name(host) if host else None
        if not name:
            return False
        if name == "localhost" or name.endswith(".localhost"):
            return True
        if is_loopback(name):
            return True
        return any(p.match(name) for p in self._patterns)
