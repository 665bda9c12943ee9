"""One direct HTTP call to a remote, made on urllib3's connection pool.

requests' HTTPAdapter.send builds its pool key, TLS settings and request URL
anew on every call, and requests prepares the request (URL parsing and
quoting, header merging, cookies) before that and builds a Response with a
cookie jar after: about 12% of a worker's CPU per non-streamed chat request,
measured with py-spy (ops/bench/compare.py shows the effect). A `Direct`
does that work once per remote origin and keeps, per call, what
HTTPAdapter.send does: the same pool (so the DNS pinning of
app.remotes.http.pinning and the CA settings stay), the same mapping of
failures to requests' exceptions (so RemoteHTTP maps them exactly as
before) and a requests.Response to read.

A whole answer on a kept-alive connection (`fetch`) goes one layer lower
still, to http.client on urllib3's pooled connection: urlopen's per-call
machinery and urllib3's HTTPResponse around it took 77 of 271 us of CPU per
call (RemoteHTTP.request in a loop against ops/bench's fast upstream), and
the worker spends 15% less CPU per relayed non-streamed chat request
(ops/bench/ab.py). Its request head is written in one piece, the bytes
http.client would write (another 6%). Streams, and any call that needs a
new connection, go through urlopen (`send`).

Calls through an outbound proxy keep requests' own path: its proxy managers
choose the pool per call.
"""

import datetime
import functools
import http.client
import io
import json
import re
import socket
import ssl
import time

import requests
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPHeaderDict, HTTPResponse
from urllib3.connection import _normalize_header_values
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    ResponseError,
    SSLError,
)
from urllib3.util import Retry, Timeout

# HTTPAdapter's default: no retries of its own (app.remotes.retry decides).
_NO_RETRIES = Retry(0, read=False)
_E = requests.exceptions


@functools.lru_cache(maxsize=1024)
def _path(url):
    """The request target of `url` (path and query), quoted as requests quotes it."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    if _UNSAFE_TARGET.search(prepared.path_url):  # as http.client's putrequest checks
        raise http.client.InvalidURL(f"URL can't contain control characters: {url!r}")
    return prepared.path_url


class Answer(requests.Response):
    """A requests.Response built for less: requests' own makes a cookie jar
    for every response (the relay reads no cookies from remotes: made only
    if asked for) and works out the text encoding (read only for an error
    message: worked out when asked for)."""

    def __init__(self, status, reason, headers, url, raw=None, content=False):
        # Every attribute requests.Response.__init__ sets, but the two above.
        self._content = content
        self._content_consumed = content is not False
        self._next = None
        self.status_code, self.reason, self.headers, self.url = status, reason, headers, url
        self.raw = raw
        self.history = []
        self.elapsed = datetime.timedelta(0)
        self.request = None

    @functools.cached_property
    def cookies(self):
        return requests.cookies.cookiejar_from_dict({})

    @functools.cached_property
    def encoding(self):
        return get_encoding_from_headers(self.headers)


class Direct:
    """Calls to one remote origin, on the pool requests' adapter would choose."""

    def __init__(self, adapter, url, verify, timeout):
        probe = requests.PreparedRequest()
        probe.prepare(method="GET", url=url)
        self.adapter = adapter
        self.pool = adapter.get_connection_with_tls_context(probe, verify, proxies=None)
        adapter.cert_verify(self.pool, url, verify, None)
        self.timeout = Timeout(connect=timeout[0], read=timeout[1])

    def send(self, method, url, headers, payload=None):
        """The response to one request (a JSON `payload`, if any), its body
        unread; failures raised as requests' exceptions."""
        headers, body = _framed(method, headers, payload)
        try:
            raw = self.pool.urlopen(
                method,
                _path(url),
                body=body,
                headers=headers,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                retries=_NO_RETRIES,
                timeout=self.timeout,
                chunked=False,
            )
        except Exception as exc:
            error = as_requests_error(exc)
            if error is exc:
                raise
            raise error from exc
        # urllib3's headers are case-insensitive too, and need no copy.
        response = Answer(raw.status, raw.reason, raw.headers, url, raw=raw)
        response.connection = self.adapter
        return response

    def fetch(self, method, url, headers, payload=None):
        """The response to one request, its whole body read into `content`
        (decoded as Content-Encoding says) and `elapsed` set; failures
        raised as `send` and read_body raise them.

        On a connection the pool keeps open, the request is written and the
        answer read by http.client, as urllib3 would do it underneath (the
        same connection classes, timeouts and header parser). With none
        open, `send` opens one, which joins the pool for the next call.
        """
        started = time.perf_counter()
        try:
            conn = self.pool._get_conn()  # its liveness test included (wire.Lean)
        except ClosedPoolError as exc:
            raise as_requests_error(exc) from exc
        if conn is None or conn.sock is None:
            self.pool._put_conn(conn)
            response = self.send(method, url, headers, payload)
            response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
            read_body(response)
            return response
        headers, body = _framed(method, headers, payload)
        raw = None
        try:
            raw = self._ask(conn, method, _path(url), headers, body)
            elapsed = time.perf_counter() - started
            content = raw.read()
        except BaseException as exc:
            conn.close()
            self.pool._put_conn(conn)
            if not isinstance(exc, Exception):
                raise  # the greenlet is being killed: nothing to map
            raise _fetch_error(exc, self.pool, url, self.timeout, raw is not None) from exc
        self.pool._put_conn(conn)  # closed already if the remote said it would close
        # The headers as urllib3 hands them on: values normalised, duplicates joined.
        headers = HTTPHeaderDict(_normalize_header_values(raw.msg))
        if headers.get("Content-Encoding"):
            content = _decoded(content, headers)
        response = Answer(raw.status, raw.reason, headers, url, content=content)
        response.elapsed = datetime.timedelta(seconds=elapsed)
        response.connection = self.adapter
        return response

    def _ask(self, conn, method, path, headers, body):
        """Write the request on `conn`, read the head of the answer.

        The request goes out as one write of what http.client's putrequest,
        putheader and endheaders would send (Host first, then `headers` in
        order): those validate and encode header by header and send the
        head and the body apart, about 14 us a call. The answer is read by
        http.client's response class, as its getresponse does; the
        connection's own state is left as a finished exchange leaves it.
        """
        # As urllib3: the request goes out under the connect timeout, the
        # answer is awaited under the read timeout.
        conn.sock.settimeout(self.timeout.connect_timeout)
        try:
            conn.sock.sendall(_head(method, path, _host(conn), headers) + (body or b""))
        except (BrokenPipeError, ConnectionResetError):
            pass  # as urllib3: a remote may answer (an error, say) and then close; read that
        conn.sock.settimeout(self.timeout.read_timeout)
        raw = conn.response_class(conn.sock, method=method)
        try:
            raw.begin()
        except BaseException:
            raw.close()
            raise
        if raw.will_close:
            conn.close()  # the answer keeps the socket until its body is read
        return raw


# What http.client refuses in a header value (a line break would start a
# header, or a request, of the value's making) and in a request target.
_UNSAFE_VALUE = re.compile(r"[\r\n\0]")
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _head(method, path, host, headers):
    """The bytes of a request's head, as http.client writes it."""
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"invalid HTTP method {method!r}")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or _UNSAFE_VALUE.search(value):
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def _host(conn):
    """The Host header http.client's putrequest sends for `conn`."""
    return _host_header(conn.host, conn.port, conn.default_port)


@functools.lru_cache(maxsize=1024)
def _host_header(host, port, default_port):
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return host if port == default_port else f"{host}:{port}"


def _framed(method, headers, payload):
    """(headers, body) of a request carrying the JSON `payload`, if any."""
    body = None
    headers = dict(headers)  # the callers' names are spelt as these are
    if payload is not None:
        # The bytes requests would send for json= (its default separators;
        # NaN cannot occur: request bodies refuse it).
        body = json.dumps(payload, allow_nan=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
    if body is not None or method not in ("GET", "HEAD"):
        headers["Content-Length"] = str(len(body or b""))
    return headers, body


def _decoded(content, headers):
    """A compressed body decoded, by urllib3 (the same decoders and errors)."""
    try:
        return (
            HTTPResponse(
                io.BytesIO(content), headers=headers, preload_content=False, decode_content=True
            ).read()
            or b""
        )
    except DecodeError as exc:
        raise _E.ContentDecodingError(exc) from exc


def _timed_out(exc):
    return isinstance(exc, socket.timeout) or (
        isinstance(exc, ssl.SSLError) and "timed out" in str(exc)
    )


def _fetch_error(exc, pool, url, timeout, answered):
    """The requests exception `send` (before the answer's head) or read_body
    (after it) raises for `exc`, raised on an open connection by http.client."""
    if _timed_out(exc):
        late = ReadTimeoutError(pool, url, f"Read timed out. (read timeout={timeout.read_timeout})")
        return _E.ConnectionError(late) if answered else _E.ReadTimeout(late)
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return _E.SSLError(SSLError(exc))
    if not isinstance(exc, (OSError, http.client.HTTPException)):
        return exc
    if answered:
        return _E.ChunkedEncodingError(ProtocolError(f"Connection broken: {exc!r}", exc))
    return _E.ConnectionError(ProtocolError("Connection aborted.", exc))


def read_body(response):
    """Read a requests.Response's whole body into it, as its `content` would
    (the same exceptions), in one urllib3 read instead of its chunk
    generator; the connection goes back to the pool when the body ends."""
    try:
        response._content = response.raw.read(decode_content=True) or b""
    except ProtocolError as exc:
        raise _E.ChunkedEncodingError(exc) from exc
    except DecodeError as exc:
        raise _E.ContentDecodingError(exc) from exc
    except ReadTimeoutError as exc:  # requests' mapping here ("Read timed out")
        raise _E.ConnectionError(exc) from exc
    except SSLError as exc:
        raise _E.SSLError(exc) from exc
    response._content_consumed = True


# What HTTPAdapter.send raises for urllib3's exceptions: for the reason inside
# a MaxRetryError, and for the others, first match first.
_FOR_REASON = ((ResponseError, _E.RetryError), (ProxyError, _E.ProxyError), (SSLError, _E.SSLError))
_FOR_ERROR = (
    ((ProtocolError, OSError, ClosedPoolError), _E.ConnectionError),
    (ProxyError, _E.ProxyError),
    (SSLError, _E.SSLError),
    (ReadTimeoutError, _E.ReadTimeout),
    (InvalidHeader, _E.InvalidHeader),
    # HTTPAdapter lets the rest through as urllib3's own; as a
    # ConnectionError they reach RemoteHTTP's mapping ("cannot reach").
    (HTTPError, _E.ConnectionError),
)


def as_requests_error(exc):
    """urllib3's exception as the requests exception HTTPAdapter.send raises for it;
    any other exception (RemoteHostRefused) as it was raised."""
    if isinstance(exc, MaxRetryError):
        reason = exc.reason
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return _E.ConnectTimeout(exc)
        kind = next(
            (kind for cause, kind in _FOR_REASON if isinstance(reason, cause)), _E.ConnectionError
        )
        return kind(exc)
    kind = next((kind for cause, kind in _FOR_ERROR if isinstance(exc, cause)), None)
    return exc if kind is None else kind(exc)
