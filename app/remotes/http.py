"""HTTP to remote hosts: pooled sessions, timeouts, proxy and CA settings, and
the mapping of every way a call can fail to one clear UpstreamError."""
import json
import logging
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from app import metrics
from app.errors import UpstreamError
from app.remotes.policy import RemoteHostRefused

log = logging.getLogger(__name__)

_MAX_ERROR_TEXT = 500


def origin(url):
    """scheme://host[:port] — how errors and logs name a remote (no path, no query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def endpoint_url(base_url, path, extra_query=()):
    """`path` under `base_url`, keeping base_url's query string: a query in
    remote_host (Azure's api-version, a gateway's routing key) goes on every call."""
    parts = urlsplit(base_url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra_query)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{path}",
                                     query=urlencode(query)))


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


def scrub(text, secret):
    return text.replace(secret, "***") if secret else text


class RemoteHTTP:
    """One per worker: a pooled requests.Session per remote origin."""

    def __init__(self, settings, policy):
        self._policy = policy
        self.timeout = (settings["RELAY_CONNECT_TIMEOUT"], settings["RELAY_READ_TIMEOUT"])
        # Passed with each request, not set on the session: requests lets
        # REQUESTS_CA_BUNDLE and *_PROXY from the environment override
        # session attributes, and the relay's own settings must win.
        # Unset, the environment (HTTPS_PROXY, NO_PROXY, ...) applies.
        self._proxy = settings["RELAY_OUTBOUND_PROXY"]
        self._verify = settings["RELAY_CA_BUNDLE"] or None
        self._sessions = {}
        self._lock = threading.Lock()

    def _transport(self, url):
        transport = {}
        # NO_PROXY still exempts hosts (internal remotes) from the relay's proxy.
        if self._proxy and not requests.utils.should_bypass_proxies(url, no_proxy=None):
            transport["proxies"] = {"http": self._proxy, "https": self._proxy}
        if self._verify:
            transport["verify"] = self._verify
        return transport

    def _session(self, url):
        key = origin(url)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = requests.Session()
                # Many concurrent streams to one provider is the normal case.
                adapter = HTTPAdapter(pool_connections=1, pool_maxsize=100)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                self._sessions[key] = session
        return session

    def request(self, method, url, *, secret=None, check=True, exchange=None, headers=None,
                **kwargs):
        """Send a request; return the response (if `check`, only one with status < 400).

        `secret` is the API key in use: it is scrubbed from any error text.
        `exchange` is the client request this call serves (telemetry.Exchange):
        its id goes to the remote, and the remote's answer is noted on it.
        """
        host = origin(url)
        headers = dict(headers or {})
        if exchange is not None:
            exchange.remote_host = host
            headers["X-Request-ID"] = exchange.request_id
        try:
            self._policy.check(url)
        except RemoteHostRefused as exc:
            metrics.UPSTREAM_REQUESTS.labels(host, "refused_by_policy").inc()
            raise UpstreamError(f"{exc} (checked again before calling it)") from None
        try:
            response = self._session(url).request(method, url, timeout=self.timeout,
                                                  headers=headers, **self._transport(url),
                                                  **kwargs)
        except requests.RequestException as exc:
            error = connection_error(exc, host, self.timeout)
            metrics.UPSTREAM_REQUESTS.labels(host, error.code).inc()
            raise error from None
        metrics.UPSTREAM_REQUESTS.labels(host, str(response.status_code)).inc()
        metrics.UPSTREAM_LATENCY.labels(host).observe(response.elapsed.total_seconds())
        if exchange is not None:
            exchange.upstream_status = response.status_code
        if check:
            self.check(response, secret)
        return response

    @staticmethod
    def check(response, secret=None):
        """Raise `API error (status): message` for an error status."""
        if response.status_code < 400:
            return
        try:
            message = scrub(upstream_message(response), secret)
        finally:
            response.close()
        raise UpstreamError(f"API error ({response.status_code}): {message}",
                            status=response.status_code)

    def json(self, response):
        """The JSON body of a successful response, read under the same error mapping."""
        host = origin(response.url)
        try:
            return response.json()
        except ValueError:  # before RequestException: requests' JSONDecodeError is both
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
        reason = "certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in text \
            else "handshake failed"
        return UpstreamError(f"TLS error talking to {host}: {reason} (a corporate CA "
                             f"bundle can be set with RELAY_CA_BUNDLE)", code="tls_error")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return UpstreamError(f"timed out connecting to {host} after {timeout[0]:g}s "
                             f"(RELAY_CONNECT_TIMEOUT)", status=504, code="connect_timeout")
    if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in text:
        return UpstreamError(f"{host} sent nothing for {timeout[1]:g}s "
                             f"(RELAY_READ_TIMEOUT)", status=504, code="read_timeout")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.StreamConsumedError)):
        return UpstreamError(f"the connection to {host} broke off mid-response",
                             code="connection_broken")
    if any(s in text for s in ("NameResolutionError", "Name or service not known",
                               "Temporary failure in name resolution", "nodename nor servname")):
        return UpstreamError(f"cannot resolve the remote host {host} (DNS lookup failed)",
                             code="dns_error")
    if "Connection refused" in text or "ECONNREFUSED" in text:
        return UpstreamError(f"{host} refused the connection", code="connection_refused")
    log.warning("cannot reach %s: %s", host, exc.__class__.__name__)
    return UpstreamError(f"cannot reach {host}", code="unreachable")
