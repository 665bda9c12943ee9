"""HTTP to remote hosts: pooled sessions, timeouts, proxy and CA settings, and
the mapping of every way a call can fail to one clear UpstreamError."""

import datetime
import functools
import json
import logging
import os
import threading
import time
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from app.errors import UpstreamError
from app.observability import metrics
from app.remotes.http.pinning import PinnedAdapter, pinned_pools
from app.remotes.http.transport import Direct, read_body
from app.remotes.policy import RemoteHostRefused
from app.remotes.retry import RETRY_CODES, RETRY_STATUSES, Retries, retry_after

log = logging.getLogger(__name__)

_MAX_ERROR_TEXT = 500
# Connections kept per remote origin and worker: many concurrent streams to
# one provider is the normal case.
POOL_MAXSIZE = 100


# origin and endpoint_url run several times per request on the few URLs of
# the models in use: cached, they cost a dict lookup instead of URL parsing.
@functools.lru_cache(maxsize=4096)
def origin(url):
    """scheme://host[:port] — how errors and logs name a remote (no path, no query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def redirect_target(url, response):
    """Where a redirect from `url` points, as an origin: no path, query or
    credentials of the Location (they may hold tokens). A relative Location
    names the remote's own origin."""
    location = response.headers.get("Location", "")
    try:
        target = urljoin(url, location.strip())
        if urlsplit(target).hostname:
            return origin(target)[:200]
    except ValueError:  # e.g. a malformed IPv6 literal
        pass
    return origin(url)


@functools.lru_cache(maxsize=4096)
def endpoint_url(base_url, path, extra_query=()):
    """`path` under `base_url`, keeping base_url's query string: a query in
    remote_host (Azure's api-version, a gateway's routing key) goes on every call."""
    parts = urlsplit(base_url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra_query)
    return urlunsplit(
        parts._replace(path=f"{parts.path.rstrip('/')}/{path}", query=urlencode(query))
    )


def upstream_message(response):
    """The human part of an upstream error body, whatever shape it has."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:_MAX_ERROR_TEXT] or response.reason or ""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or json.dumps(error))
        if error:
            return str(error)
    return json.dumps(body)[:_MAX_ERROR_TEXT]


def content_type(response):
    """The media type of a response, lower case, without parameters ("" if none)."""
    value = response.headers.get("Content-Type") or ""
    return value.split(";", 1)[0].strip().lower()[:100]


def scrub(text, secret):
    return text.replace(secret, "***") if secret else text


class _Route:
    """How calls to one remote origin go out: its connection pools (a
    requests adapter), and the proxies and CA bundle passed with each call.
    `proxied`: through an outbound proxy."""

    def __init__(self, adapter, transport, proxied):
        self.adapter = adapter
        self.transport = transport
        self.proxied = proxied
        self.direct = None  # a transport.Direct, made on the first direct call


# What requests.Session would add to every call.
_DEFAULT_HEADERS = dict(requests.utils.default_headers())


class RemoteHTTP:
    """One per worker: a pooled requests.Session per remote origin."""

    def __init__(self, settings, policy):
        self._policy = policy
        self.timeout = (settings["RELAY_CONNECT_TIMEOUT"], settings["RELAY_READ_TIMEOUT"])
        # RELAY_MAX_SSE_LINE_BYTES: the longest line a remote's stream may send.
        self.max_line = settings.get("RELAY_MAX_SSE_LINE_BYTES")
        self._retries = settings["RELAY_RETRIES"]
        self._max_wait = settings["RELAY_RETRY_MAX_WAIT"]
        # The environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) is read
        # here and once per origin, not by requests on every call (trust_env
        # costs an environment scan and a ~/.netrc read per request). The
        # relay's own settings win over it. Unset, the environment applies.
        self._proxy = settings["RELAY_OUTBOUND_PROXY"]
        self._verify = (
            settings["RELAY_CA_BUNDLE"]
            or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or None
        )
        self._pools = pinned_pools(policy)
        self._routes = {}
        self._lock = threading.Lock()

    def _proxies(self, url):
        if self._proxy:
            # NO_PROXY still exempts hosts (internal remotes) from the relay's proxy.
            if requests.utils.should_bypass_proxies(url, no_proxy=None):
                return {}
            return {"http": self._proxy, "https": self._proxy}
        # HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, minus NO_PROXY, as requests reads them.
        proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
        return {urlsplit(url).scheme: proxy} if proxy else {}

    def _route(self, url):
        key = origin(url)
        with self._lock:
            route = self._routes.get(key)
            if route is None:
                adapter = PinnedAdapter(self._pools, pool_connections=1, pool_maxsize=POOL_MAXSIZE)
                proxies = self._proxies(url)
                transport = {"proxies": proxies}
                if self._verify:
                    transport["verify"] = self._verify
                route = self._routes[key] = _Route(adapter, transport, bool(proxies))
        return route

    def request(
        self, method, url, *, secret=None, check=True, exchange=None, headers=None, **kwargs
    ):
        """Send a request; return the response (if `check`, only one with status < 400).

        `secret` is the API key in use: it is scrubbed from any error text.
        `exchange` is the client request this call serves (telemetry.Exchange):
        its id goes to the remote, and the remote's answer is noted on it.
        Redirects are never followed: a 3xx is an UpstreamError. Failures a
        retry may cure are retried (app.remotes.retry) before returning.
        """
        host = origin(url)
        headers = dict(headers or {})
        if exchange is not None:
            exchange.remote_host = host
            headers["X-Request-ID"] = exchange.request_id
        route = self._route(url)
        retries = Retries(self._retries, self._max_wait, getattr(exchange, "client_gone", None))
        while True:
            try:
                response = self._send(route, method, url, host, headers, kwargs)
            except UpstreamError as error:
                wait = retries.wait_for() if error.code in RETRY_CODES else None
                if wait is None:
                    self._done(host, exchange, retries, gave_up=error.code in RETRY_CODES)
                    raise
            else:
                retryable = response.status_code in RETRY_STATUSES
                wait = retries.wait_for(retry_after(response.headers)) if retryable else None
                if wait is None:
                    self._done(host, exchange, retries, gave_up=retryable)
                    break
                response.close()
            metrics.UPSTREAM_RETRIES.labels(host, "retried").inc()
            if not retries.sleep(wait):
                self._done(host, exchange, retries, gave_up=False)
                raise UpstreamError(
                    f"the client went away while the relay waited to retry {host}",
                    code="client_gone",
                )
        if exchange is not None:
            exchange.upstream_status = response.status_code
        if check:
            self.check(response, secret)
        return response

    def _send(self, route, method, url, host, headers, kwargs):
        """One attempt: the policy, the call, and the mapping of its failures."""
        try:
            # Direct connections are checked, address by address, as they are
            # opened (app.remotes.http.pinning): here only what the URL decides.
            # Through a proxy, the proxy resolves the name: check what can be
            # known here (the name, and its addresses if it resolves locally).
            self._policy.check(url, resolve=route.proxied)
            response = self._call(route, method, url, headers, **kwargs)
        except RemoteHostRefused as exc:
            metrics.UPSTREAM_REQUESTS.labels(host, "refused_by_policy").inc()
            raise UpstreamError(f"{exc} (checked again before calling it)") from None
        except requests.RequestException as exc:
            error = connection_error(exc, host, self.timeout)
            metrics.UPSTREAM_REQUESTS.labels(host, error.code).inc()
            raise error from None
        if 300 <= response.status_code < 400:
            metrics.UPSTREAM_REQUESTS.labels(host, "redirect").inc()
            response.close()
            raise UpstreamError(
                f"remote_host redirects to {redirect_target(url, response)} "
                f"(HTTP {response.status_code}): set remote_host to the final URL"
            )
        metrics.child(metrics.UPSTREAM_REQUESTS, host, str(response.status_code)).inc()
        metrics.child(metrics.UPSTREAM_LATENCY, host).observe(response.elapsed.total_seconds())
        return response

    def _call(self, route, method, url, headers, json=None, stream=False):
        """One HTTP call through the route's adapter.

        Direct connections go through app.remotes.http.transport (urllib3's pool,
        without requests' per-call preparation; a whole answer on a kept
        connection read by http.client under it); through an outbound proxy,
        through the route's requests adapter: what requests.Session.request
        does, without the machinery the relay does not use (merging session
        settings, cookies, hooks, auth and environment lookups). None
        follows a redirect, which would take the request and its API key to
        a host the policy never saw. A whole answer is read within the
        attempt: a body cut short is this call's failure.
        """
        headers = {**_DEFAULT_HEADERS, **headers}
        started = time.perf_counter()
        if not route.proxied:
            if route.direct is None:
                route.direct = Direct(
                    route.adapter, url, route.transport.get("verify", True), self.timeout
                )
            if stream:
                response = route.direct.send(method, url, headers, json)
            else:
                return route.direct.fetch(method, url, headers, json)
        else:
            prepared = requests.PreparedRequest()
            prepared.prepare(method=method, url=url, headers=headers, json=json)
            response = route.adapter.send(
                prepared, stream=stream, timeout=self.timeout, **route.transport
            )
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        if not stream:
            read_body(response)
        return response

    @staticmethod
    def _done(host, exchange, retries, gave_up):
        if gave_up:
            metrics.UPSTREAM_RETRIES.labels(host, "gave_up").inc()
        if exchange is not None:
            exchange.attempts += retries.attempts

    @staticmethod
    def check(response, secret=None):
        """Raise `API error (status): message` for an error status."""
        if response.status_code < 400:
            return
        try:
            message = scrub(upstream_message(response), secret)
        finally:
            response.close()
        headers = {}
        if response.status_code == 429 and response.headers.get("Retry-After"):
            # The client's own retry logic (the SDKs honour it) needs it.
            headers["Retry-After"] = response.headers["Retry-After"]
        raise UpstreamError(
            f"API error ({response.status_code}): {message}",
            status=response.status_code,
            headers=headers,
            code="rate_limit_exceeded" if response.status_code == 429 else None,
        )

    def json(self, response):
        """The JSON body of a successful response, read under the same error mapping.

        JSON is UTF-8 (RFC 8259); json.loads takes the bytes as they are and
        refuses invalid UTF-8, as the stream reader does (app.remotes.sse).
        requests' response.json() would instead decode with errors="replace":
        an answer with U+FFFD where the remote's bytes were, and a 200.
        """
        host = origin(response.url)
        try:
            return json.loads(response.content)
        except UnicodeDecodeError:  # a ValueError too
            raise UpstreamError(f"{host} answered with a body that is not valid UTF-8") from None
        except ValueError:
            # An HTML page (a proxy's, a login portal's) is named as such: its
            # type tells the operator where to look.
            kind = content_type(response)
            if kind and "json" not in kind:
                raise UpstreamError(f"{host} answered with {kind}, not JSON") from None
            raise UpstreamError(f"{host} answered with a body that is not JSON") from None
        except requests.RequestException as exc:
            raise connection_error(exc, host, self.timeout) from None
        finally:
            response.close()


def connection_error(exc, host, timeout):
    """An UpstreamError saying, without internals, why `host` could not be used."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.ProxyError):
        return UpstreamError(f"the outbound proxy failed to connect to {host}", code="proxy_error")
    if isinstance(exc, requests.exceptions.SSLError):
        reason = (
            "certificate verify failed"
            if "CERTIFICATE_VERIFY_FAILED" in text
            else "handshake failed"
        )
        return UpstreamError(
            f"TLS error talking to {host}: {reason} (a corporate CA "
            f"bundle can be set with RELAY_CA_BUNDLE)",
            code="tls_error",
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return UpstreamError(
            f"timed out connecting to {host} after {timeout[0]:g}s (RELAY_CONNECT_TIMEOUT)",
            status=504,
            code="connect_timeout",
        )
    if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in text:
        return UpstreamError(
            f"{host} sent nothing for {timeout[1]:g}s (RELAY_READ_TIMEOUT)",
            status=504,
            code="read_timeout",
        )
    if isinstance(
        exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.StreamConsumedError)
    ):
        return UpstreamError(
            f"the connection to {host} broke off mid-response", code="connection_broken"
        )
    if any(
        s in text
        for s in (
            "NameResolutionError",
            "Name or service not known",
            "Temporary failure in name resolution",
            "nodename nor servname",
        )
    ):
        return UpstreamError(
            f"cannot resolve the remote host {host} (DNS lookup failed)", code="dns_error"
        )
    if any(
        s in text for s in ("Connection aborted", "RemoteDisconnected", "Connection reset by peer")
    ):
        return UpstreamError(
            f"{host} closed the connection before answering", code="connection_reset"
        )
    if "Connection refused" in text or "ECONNREFUSED" in text:
        return UpstreamError(f"{host} refused the connection", code="connection_refused")
    log.warning("cannot reach %s: %s", host, exc.__class__.__name__)
    return UpstreamError(f"cannot reach {host}", code="unreachable")
