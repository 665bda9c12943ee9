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


def _host_name(host):
    """The name in a Host header, without port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostPolicy:
    """Host names an open (unauthenticated) relay answers."""

    def __init__(self, extra=()):
        self._patterns = [_pattern(g) for g in extra]

    def allows(self, host):
        name = _host_name(host or "")
        if name in ("", "localhost") or name.endswith(".localhost"):
            return True
        try:
            if ipaddress.ip_address(name).is_loopback:
                return True
        except ValueError:
            pass
        return any(p.match(name) for p in self._patterns)
