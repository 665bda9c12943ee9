"""Fast path: a whole answer on a connection the pool keeps open, read by http.client.

urlopen's per-call machinery and urllib3's HTTPResponse around http.client's
are a large share of a relayed non-streamed request's CPU (ops/bench/ab.py).
On a connection urllib3's pool keeps open, `fetch` writes the request and
reads the answer with http.client directly, as urllib3 would underneath: the
same connection classes, timeouts, header parser and decoders, and the
request's head written in one piece, the bytes http.client would write.

It borrows the connection with the pool's private `_get_conn`/`_put_conn`
(urllib3 has no public way to), and joins header values as urllib3's private
`_normalize_header_values` does: gated on the urllib3 it was tested with,
and on the Python whose http.client it drives. With no open connection, or
switched off, the caller takes urlopen (app.remotes.http.transport).
"""

import functools
import http.client
import io
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, NoReturn

import urllib3.connection
from urllib3 import HTTPHeaderDict, HTTPResponse
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util import Timeout

from app import fast

TESTED_WITH = {"python": "3.11", "urllib3": "2.8.0"}
# Looked up, never imported: a urllib3 that renames them turns this path off.
_normalize: Callable[[http.client.HTTPMessage], Iterable[tuple[str, str]]] | None = getattr(
    urllib3.connection, "_normalize_header_values", None
)
SUPPORTED = (
    fast.tested(TESTED_WITH)
    and _normalize is not None
    and all(hasattr(HTTPConnectionPool, name) for name in ("_get_conn", "_put_conn"))
)


def active(wanted: bool) -> bool:
    """Whether whole answers on kept connections go this way (RELAY_FAST_PATHS: `wanted`)."""
    return SUPPORTED and wanted


class Kept(NamedTuple):
    """An answer read whole: what the caller builds its response from."""

    status: int
    reason: str
    headers: HTTPHeaderDict
    content: bytes
    elapsed: float  # seconds until the answer's head was read


# Turns a failure into what the caller raises; `answered`: the head was read.
Failed = Callable[[BaseException, bool], BaseException]


def _raise(error: BaseException, exc: BaseException) -> NoReturn:
    if error is exc:
        raise exc
    raise error from exc


def fetch(
    pool: HTTPConnectionPool,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: Timeout,
    failed: Failed,
) -> Kept | None:
    """The answer to one request on a connection `pool` keeps open, its
    body read whole and decoded as Content-Encoding says; None (nothing
    sent) when the pool holds no open connection. Failures go through
    `failed`, and the connection is closed."""
    started = time.perf_counter()
    try:
        conn: Any = pool._get_conn()  # its liveness test included
    except Exception as exc:  # ClosedPoolError
        _raise(failed(exc, False), exc)
    if conn is None or conn.sock is None:
        pool._put_conn(conn)
        return None
    answered = False
    try:
        raw = _ask(conn, method, path, headers, body, timeout)
        answered = True
        elapsed = time.perf_counter() - started
        content = raw.read()
    except BaseException as exc:
        conn.close()
        pool._put_conn(conn)
        if not isinstance(exc, Exception):
            raise  # the greenlet is being killed: nothing to map
        _raise(failed(exc, answered), exc)
    pool._put_conn(conn)  # closed already if the remote said it would close
    assert _normalize is not None
    # The headers as urllib3 hands them on: values normalised, duplicates joined.
    found = HTTPHeaderDict(_normalize(raw.msg))
    if found.get("Content-Encoding"):
        try:
            content = _decoded(content, found)
        except Exception as exc:  # urllib3's DecodeError
            _raise(failed(exc, True), exc)
    return Kept(raw.status, raw.reason, found, content, elapsed)


def _ask(
    conn: Any,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: Timeout,
) -> http.client.HTTPResponse:
    """Write the request on `conn`, read the head of the answer.

    The request goes out as one write of what http.client's putrequest,
    putheader and endheaders would send (Host first, then `headers` in
    order): those validate and encode header by header and send the head
    and the body apart. The answer is read by the connection's response
    class, as getresponse does; the connection's own state is left as a
    finished exchange leaves it.
    """
    # As urllib3: the request goes out under the connect timeout, the
    # answer is awaited under the read timeout.
    conn.sock.settimeout(timeout.connect_timeout)
    try:
        conn.sock.sendall(request_head(method, path, host_header(conn), headers) + (body or b""))
    except (BrokenPipeError, ConnectionResetError):
        pass  # as urllib3: a remote may answer (an error, say) and then close; read that
    conn.sock.settimeout(timeout.read_timeout)
    raw: http.client.HTTPResponse = conn.response_class(conn.sock, method=method)
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


def request_head(method: str, path: str, host: str, headers: Mapping[str, str]) -> bytes:
    """The bytes of a request's head, as http.client writes it."""
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"invalid HTTP method {method!r}")
    if _UNSAFE_TARGET.search(path):  # as http.client's putrequest checks
        raise http.client.InvalidURL(f"URL can't contain control characters: {path!r}")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or _UNSAFE_VALUE.search(value):
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def host_header(conn: Any) -> str:
    """The Host header http.client's putrequest sends for `conn`."""
    return _host_header(conn.host, conn.port, conn.default_port)


@functools.lru_cache(maxsize=1024)
def _host_header(host: str, port: int, default_port: int) -> str:
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return host if port == default_port else f"{host}:{port}"


def _decoded(content: bytes, headers: HTTPHeaderDict) -> bytes:
    """A compressed body decoded, by urllib3 (the same decoders and errors)."""
    response = HTTPResponse(
        io.BytesIO(content), headers=headers, preload_content=False, decode_content=True
    )
    return response.read() or b""
