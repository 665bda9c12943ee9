"""HTTP to remote hosts: a route per remote origin (its connection pool, or
the outbound proxy), timeouts, proxy and CA settings, retries, and the
checks every answer gets (redirects refused, error statuses raised)."""

import contextlib
import functools
import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any, ContextManager, Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import certifi
import requests.utils
from urllib3 import ProxyManager
from urllib3.util import make_headers, parse_url

from app.errors import ClientGone, UpstreamError
from app.fast import pool_liveness, response_head
from app.observability import metrics
from app.remotes.http.errors import TRANSPORT_ERRORS, upstream_error
from app.remotes.http.pinning import PinnedPools
from app.remotes.http.transport import Answer, Direct, Proxied, Route
from app.remotes.policy import RemoteHostPolicy, RemoteHostRefused
from app.remotes.retry import RETRY_CODES, Retries, retried_status, retry_after

# The most of a remote's error text (a text body, a JSON error's message, an
# error event) a client is shown: enough for any provider's explanation, and
# a remote's megabytes of error go no further.
MAX_ERROR_TEXT = 500
log = logging.getLogger(__name__)
# Connections kept per remote origin and worker: many concurrent streams to
# one provider is the normal case.
POOL_MAXSIZE = 100


# origin and endpoint_url run several times per request on the few URLs of
# the models in use: cached, they cost a dict lookup instead of URL parsing.
@functools.lru_cache(maxsize=4096)
def origin(url: str) -> str:
    """scheme://host[:port] — how errors and logs name a remote (no path, no query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def redirect_target(url: str, response: Answer) -> str:
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
def endpoint_url(base_url: str, path: str, extra_query: tuple[tuple[str, str], ...] = ()) -> str:
    """`path` under `base_url`, keeping base_url's query string: a query in
    remote_host (Azure's api-version, a gateway's routing key) goes on every call."""
    parts = urlsplit(base_url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra_query)
    return urlunsplit(
        parts._replace(path=f"{parts.path.rstrip('/')}/{path}", query=urlencode(query))
    )


def upstream_message(response: Answer, secret: str | None = None) -> str:
    """The human part of an upstream error body, whatever shape it has: the
    key in use removed first, then cut to MAX_ERROR_TEXT characters (cut
    first, a key across the cut would have shown in part)."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit
        return error_text(response.text.strip(), secret) or response.reason or ""
    try:
        message = json.dumps(body)
        if isinstance(body, dict):
            error = body.get("error", body)
            if isinstance(error, dict):
                message = str(error.get("message") or error.get("detail") or json.dumps(error))
            elif error:
                message = str(error)
    except RecursionError:  # parsed just under the limit, too deep to write again
        message = response.text.strip()
    return error_text(message, secret)


def content_type(response: Answer) -> str:
    """The media type of a response, lower case, without parameters ("" if none)."""
    value = response.headers.get("Content-Type") or ""
    return value.split(";", 1)[0].strip().lower()[:100]


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def error_text(text: str, secret: str | None) -> str:
    """A remote's error text as a client may see it: `secret` removed, then
    cut to MAX_ERROR_TEXT characters. In this order: a key that straddled
    the cut would otherwise show in part."""
    return scrub(text, secret)[:MAX_ERROR_TEXT]


class Exchange(Protocol):
    """What RemoteHTTP notes on the client request a call serves
    (app.observability.telemetry.Exchange)."""

    request_id: str
    remote_host: str | None
    upstream_status: int | None
    attempts: int
    # The client left while the remote worked on its request: what the
    # remote did is counted (the estimate), as for a cut stream.
    abandoned: bool

    def client_gone(self) -> bool: ...

    def begin_attempt(
        self,
        operation: str,
        provider: str,
        url: str,
        body: Any,
        stream: bool,
        retry: int,
        secret: str | None = None,
    ) -> Any: ...

    def waiting_on(self, host: str) -> ContextManager[None]:
        """While open, ClientGone is raised where the call waits as soon as
        the client closes its connection (app.web.client_watch)."""
        ...


def _watching(exchange: Exchange | None, host: str) -> ContextManager[None]:
    waiting_on = getattr(exchange, "waiting_on", None)
    return contextlib.nullcontext() if waiting_on is None else waiting_on(host)


def _error_message(response: Answer, secret: str | None) -> str:
    """The error text of `response` (its body read now, and kept for check())."""
    try:
        return upstream_message(response, secret)
    except TRANSPORT_ERRORS:
        return ""


class RemoteHTTP:
    """One per worker: the routes to remote origins, and the calls on them."""

    def __init__(self, settings: Mapping[str, Any], policy: RemoteHostPolicy) -> None:
        self._policy = policy
        self.timeout: tuple[float, float] = (
            settings["RELAY_CONNECT_TIMEOUT"],
            settings["RELAY_READ_TIMEOUT"],
        )
        # RELAY_MAX_SSE_LINE_BYTES: the longest line a remote's stream may send.
        self.max_line: int | None = settings.get("RELAY_MAX_SSE_LINE_BYTES")
        self._retries: int = settings["RELAY_RETRIES"]
        self._max_wait: float = settings["RELAY_RETRY_MAX_WAIT"]
        # The environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) is read
        # here and once per origin, not on every call. The relay's own
        # settings win over it. Unset, the environment applies.
        self._proxy: str = settings["RELAY_OUTBOUND_PROXY"]
        verify = (
            settings["RELAY_CA_BUNDLE"]
            or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or certifi.where()  # the bundle requests used, not the system's store
        )
        self._tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
        self._tls["ca_cert_dir" if os.path.isdir(verify) else "ca_certs"] = verify
        self.fast = bool(settings.get("RELAY_FAST_PATHS", True))
        mixins: list[type] = []
        if pool_liveness.active(self.fast):
            mixins.append(pool_liveness.Liveness)
        if response_head.active(self.fast):
            mixins.append(response_head.LeanHeads)
        self._pools = PinnedPools(policy, tuple(mixins))
        self._proxies: dict[str, ProxyManager] = {}
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()

    def _proxy_for(self, url: str) -> str | None:
        """The outbound proxy for `url`, or None to go direct."""
        if self._proxy:
            # NO_PROXY still exempts hosts (internal remotes) from the relay's proxy.
            if requests.utils.should_bypass_proxies(url, no_proxy=None):
                return None
            return self._proxy
        # HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, minus NO_PROXY, as requests
        # (and curl) read them: CIDR ranges in NO_PROXY included.
        proxy: str | None = requests.utils.select_proxy(
            url, requests.utils.get_environ_proxies(url)
        )
        return proxy or None

    def _manager(self, proxy: str) -> ProxyManager:
        manager = self._proxies.get(proxy)
        if manager is None:
            parts = parse_url(proxy if "://" in proxy else f"http://{proxy}")
            headers = None
            if parts.auth:
                user, _, password = parts.auth.partition(":")
                headers = make_headers(proxy_basic_auth=f"{unquote(user)}:{unquote(password)}")
            manager = self._proxies[proxy] = ProxyManager(
                parts.url,
                num_pools=100,
                proxy_headers=headers,
                maxsize=POOL_MAXSIZE,
                block=False,
                **self._tls,
            )
        return manager

    def _route(self, url: str) -> Route:
        key = origin(url)
        with self._lock:
            route = self._routes.get(key)
            if route is None:
                route = self._routes[key] = self._new_route(key, url)
        return route

    def _new_route(self, host: str, url: str) -> Route:
        proxy = self._proxy_for(url)
        if proxy:
            try:
                return Proxied(host, self.timeout, self._manager(proxy))
            except TRANSPORT_ERRORS as exc:  # a proxy URL urllib3 cannot use
                raise upstream_error(exc, host, self.timeout) from None
        parts = parse_url(url)
        pool = self._pools.pool(
            parts.scheme or "http",
            parts.host or "",
            parts.port,
            maxsize=POOL_MAXSIZE,
            block=False,
            **self._tls,
        )
        return Direct(host, self.timeout, pool, self.fast)

    def request(
        self,
        method: str,
        url: str,
        *,
        secret: str | None = None,
        check: bool = True,
        exchange: Exchange | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        stream: bool = False,
        operation: tuple[str, str] | None = None,
    ) -> Answer:
        """Send a request; return the response (if `check`, only one with status < 400).

        `secret` is the API key in use: it is scrubbed from any error text.
        `exchange` is the client request this call serves (telemetry.Exchange):
        its id goes to the remote, and the remote's answer is noted on it.
        Redirects are never followed: a 3xx is an UpstreamError. Failures a
        retry may cure are retried (app.remotes.retry) before returning.
        A whole answer (not `stream`) is read before returning.
        `operation` is (gen_ai.operation.name, gen_ai.provider.name): each
        attempt is then counted, and traced, on `exchange` (begin_attempt).
        """
        host = origin(url)
        headers = dict(headers or {})
        if exchange is not None:
            exchange.remote_host = host
            headers["X-Request-ID"] = exchange.request_id
        retries = Retries(self._retries, self._max_wait, getattr(exchange, "client_gone", None))
        attempt = None
        while True:
            sent = headers
            if exchange is not None and operation is not None:
                attempt = exchange.begin_attempt(
                    *operation, url, json, stream, retries.attempts - 1, secret
                )
                if attempt.headers:
                    sent = {**headers, **attempt.headers}
            try:
                with _watching(exchange, host):
                    response = self._send(method, url, host, sent, json, stream)
            except ClientGone:
                if attempt is not None:
                    attempt.fail("client_gone")
                self._done(host, exchange, retries, gave_up=False)
                if exchange is not None:
                    exchange.abandoned = True
                metrics.UPSTREAM_REQUESTS.labels(host, "client_gone").inc()
                raise
            except UpstreamError as error:
                if attempt is not None:
                    attempt.fail(error.code or str(error.status))
                wait = retries.wait_for() if error.code in RETRY_CODES else None
                if wait is None:
                    self._done(host, exchange, retries, gave_up=error.code in RETRY_CODES)
                    raise
            else:
                retryable = retried_status(
                    response.status_code, lambda: _error_message(response, secret)
                )
                wait = retries.wait_for(retry_after(response.headers)) if retryable else None
                if wait is None:
                    self._done(host, exchange, retries, gave_up=retryable)
                    break
                if attempt is not None:
                    attempt.fail(str(response.status_code))
                response.close()
            metrics.UPSTREAM_RETRIES.labels(host, "retried").inc()
            if not retries.sleep(wait):
                self._done(host, exchange, retries, gave_up=False)
                raise ClientGone(f"the client went away while the relay waited to retry {host}")
        if exchange is not None:
            exchange.upstream_status = response.status_code
        if attempt is not None and response.status_code >= 400:
            attempt.fail(str(response.status_code))
        if check:
            self.check(response, secret)
        return response

    def _send(
        self,
        method: str,
        url: str,
        host: str,
        headers: Mapping[str, str],
        payload: Any,
        stream: bool,
    ) -> Answer:
        """One attempt: the policy, the call, and what its answer's status says."""
        try:
            route = self._route(url)
            # Direct connections are checked, address by address, as they are
            # opened (app.remotes.http.pinning): here only what the URL decides.
            # Through a proxy, the proxy resolves the name: check what can be
            # known here (the name, and its addresses if it resolves locally).
            self._policy.check(url, resolve=route.proxied)
            response = route.call(method, url, headers, payload, stream)
        except RemoteHostRefused as exc:
            metrics.UPSTREAM_REQUESTS.labels(host, "refused_by_policy").inc()
            raise UpstreamError(f"{exc} (checked again before calling it)") from None
        except UpstreamError as error:
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
        metrics.child(metrics.UPSTREAM_LATENCY, host).observe(response.elapsed)
        return response

    @staticmethod
    def _done(host: str, exchange: Exchange | None, retries: Retries, gave_up: bool) -> None:
        if gave_up:
            metrics.UPSTREAM_RETRIES.labels(host, "gave_up").inc()
        if exchange is not None:
            exchange.attempts += retries.attempts

    @staticmethod
    def check(response: Answer, secret: str | None = None) -> None:
        """Raise `API error (status): message` for an error status."""
        if response.status_code < 400:
            return
        try:
            message = upstream_message(response, secret)  # a stream's body read now
        except TRANSPORT_ERRORS:
            message = response.reason or ""
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

    def json(self, response: Answer) -> Any:
        """The JSON body of a whole answer.

        JSON is UTF-8 (RFC 8259); json.loads takes the bytes as they are and
        refuses invalid UTF-8, as the stream reader does (app.remotes.sse),
        instead of an answer with U+FFFD where the remote's bytes were, and a 200.
        """
        host = origin(response.url)
        try:
            return json.loads(response.content)
        except UnicodeDecodeError:  # a ValueError too
            raise UpstreamError(f"{host} answered with a body that is not valid UTF-8") from None
        except RecursionError:  # nesting past the parser's limit: the remote's fault
            log.warning("%s answered with JSON nested too deeply", host)
            raise UpstreamError(f"{host} answered with JSON nested too deeply") from None
        except ValueError:
            # An HTML page (a proxy's, a login portal's) is named as such: its
            # type tells the operator where to look.
            kind = content_type(response)
            if kind and "json" not in kind:
                raise UpstreamError(f"{host} answered with {kind}, not JSON") from None
            raise UpstreamError(f"{host} answered with a body that is not JSON") from None
        finally:
            response.close()
