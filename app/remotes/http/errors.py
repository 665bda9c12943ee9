"""Every way a call to a remote can fail, as the UpstreamError a client sees.

One table (`ERROR_MAP`) maps exception types to the relay's upstream error
codes: every class urllib3.exceptions exports, and the OSError, ssl and
http.client types that reach the relay from under it. A failure is looked
up along its class's MRO (the most specific entry wins); wrappers are looked
through to what they wrap (a MaxRetryError to its reason, a failed new
connection to the OS error that failed it). No decision rests on an error
message's text, which differs between platforms and library versions.

Some failures mean one thing before the remote's answer began and another
while its body is read: a connection closed before the head is
`connection_reset` (the remote may never have seen the request: retried),
one closed mid-body is `connection_broken` (it has: never retried). The
retry and fallback decisions (app.remotes.retry, app.routing) read the code.
"""

import http.client
import logging
import socket
import ssl
from email.errors import MessageDefect
from typing import NamedTuple

from urllib3 import exceptions as u

from app.errors import UpstreamError

log = logging.getLogger(__name__)


class Failure(NamedTuple):
    """An upstream error code's status and message (`host`, `connect` and
    `read` are filled in; `reason` for TLS)."""

    status: int
    message: str


FAILURES = {
    "proxy_error": Failure(502, "the outbound proxy failed to connect to {host}"),
    "tls_error": Failure(
        502,
        "TLS error talking to {host}: {reason} "
        "(a corporate CA bundle can be set with RELAY_CA_BUNDLE)",
    ),
    "connect_timeout": Failure(
        504, "timed out connecting to {host} after {connect:g}s (RELAY_CONNECT_TIMEOUT)"
    ),
    "read_timeout": Failure(504, "{host} sent nothing for {read:g}s (RELAY_READ_TIMEOUT)"),
    "connection_broken": Failure(502, "the connection to {host} broke off mid-response"),
    "dns_error": Failure(502, "cannot resolve the remote host {host} (DNS lookup failed)"),
    "connection_reset": Failure(502, "{host} closed the connection before answering"),
    "connection_refused": Failure(502, "{host} refused the connection"),
    "unreachable": Failure(502, "cannot reach {host}"),
    "undecodable": Failure(502, "{host} answered with a body that does not decode"),
}

# A code that depends on when the failure came: before the answer's head,
# or while its body was read.
RESET = ("connection_reset", "connection_broken")


def _both(code: str) -> tuple[str, str]:
    return (code, code)


UNREACHABLE = _both("unreachable")
# A class whose code is its cause's, when it has one the table knows.
LOOK_THROUGH = (u.MaxRetryError, u.NewConnectionError)

# exception type -> (code before the answer's head, code while its body is read)
ERROR_MAP: dict[type[BaseException], tuple[str, str]] = {
    # urllib3.exceptions, every class it exports.
    u.HTTPError: UNREACHABLE,
    # Warnings: raised only where warnings are made errors (python -W error).
    u.HTTPWarning: UNREACHABLE,
    u.SecurityWarning: UNREACHABLE,
    u.InsecureRequestWarning: UNREACHABLE,
    u.InsecurePlatformWarning: UNREACHABLE,
    u.NotOpenSSLWarning: UNREACHABLE,
    u.SystemTimeWarning: UNREACHABLE,
    u.DependencyWarning: UNREACHABLE,
    u.BodyNotHttplibCompatible: UNREACHABLE,
    u.PoolError: UNREACHABLE,
    u.ClosedPoolError: UNREACHABLE,
    u.EmptyPoolError: UNREACHABLE,
    u.FullPoolError: UNREACHABLE,
    u.RequestError: UNREACHABLE,
    u.HostChangedError: UNREACHABLE,
    u.MaxRetryError: UNREACHABLE,  # its reason's, looked through
    u.TimeoutError: _both("read_timeout"),
    u.ReadTimeoutError: _both("read_timeout"),
    u.ConnectTimeoutError: _both("connect_timeout"),
    u.NewConnectionError: UNREACHABLE,  # its OS error's, looked through
    u.NameResolutionError: _both("dns_error"),
    u.ProtocolError: RESET,  # also exported as urllib3.exceptions.ConnectionError
    u.ResponseNotChunked: RESET,
    u.IncompleteRead: RESET,
    u.InvalidChunkLength: RESET,
    u.SSLError: _both("tls_error"),
    u.ProxyError: _both("proxy_error"),
    u.ProxySchemeUnknown: _both("proxy_error"),
    u.ProxySchemeUnsupported: _both("proxy_error"),
    # The remote answered, with a body its Content-Encoding does not decode:
    # never retried (it would generate the whole answer again).
    u.DecodeError: _both("undecodable"),
    # The relay's own answer to these has always been "cannot reach": an
    # answer or a URL urllib3 cannot take.
    u.HeaderParsingError: UNREACHABLE,
    u.InvalidHeader: UNREACHABLE,
    u.ResponseError: UNREACHABLE,
    u.LocationValueError: UNREACHABLE,
    u.LocationParseError: UNREACHABLE,
    u.URLSchemeUnknown: UNREACHABLE,
    u.TimeoutStateError: UNREACHABLE,
    u.UnrewindableBodyError: UNREACHABLE,
    MessageDefect: UNREACHABLE,  # exported by urllib3.exceptions from email.errors
    # What http.client and the OS raise on a connection that is open (the
    # kept-connection fast path reads one directly; urllib3 wraps most).
    http.client.HTTPException: RESET,  # BadStatusLine, LineTooLong...
    http.client.IncompleteRead: RESET,  # exported by urllib3.exceptions too
    OSError: RESET,
    ConnectionRefusedError: _both("connection_refused"),  # errno ECONNREFUSED
    ConnectionResetError: RESET,  # errno ECONNRESET: said so even of a new connection
    TimeoutError: _both("read_timeout"),  # socket.timeout, errno ETIMEDOUT
    socket.gaierror: _both("dns_error"),  # any EAI_* from the resolver
    ssl.SSLError: _both("tls_error"),
}

# What `upstream_error` maps: for except clauses around calls to remotes.
TRANSPORT_ERRORS = tuple(ERROR_MAP)
# Causes too vague to say why a new connection failed: it "cannot reach".
_VAGUE = (OSError, http.client.HTTPException)


def _cause(exc: BaseException) -> BaseException | None:
    if isinstance(exc, u.MaxRetryError):
        return exc.reason
    return exc.__cause__


def _entry(exc: BaseException) -> type[BaseException] | None:
    """The class of `exc`'s MRO that the table names first."""
    return next((cls for cls in type(exc).__mro__ if cls in ERROR_MAP), None)


def classify(exc: BaseException, answered: bool = False) -> str | None:
    """The upstream error code of `exc`, raised before the remote's answer
    began (or, `answered`, while its body was read); None if not a failure
    of the remote or the way to it."""
    if isinstance(exc, LOOK_THROUGH):
        cause = _cause(exc)
        entry = None if cause is None else _entry(cause)
        if cause is not None and entry is not None:
            if not (isinstance(exc, u.NewConnectionError) and entry in _VAGUE):
                return classify(cause, answered)
    entry = _entry(exc)
    return None if entry is None else ERROR_MAP[entry][answered]


def _chain(exc: BaseException | None) -> list[BaseException]:
    """`exc` and what it wraps: causes, contexts and exception arguments."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
        todo += [a for a in current.args if isinstance(a, BaseException)]
        if isinstance(current, u.MaxRetryError):
            todo.append(current.reason)
    return seen


def tls_reason(exc: BaseException) -> str:
    """What a TLS failure was, by the type of the ssl error inside it."""
    verify = any(isinstance(e, ssl.SSLCertVerificationError) for e in _chain(exc))
    return "certificate verify failed" if verify else "handshake failed"


def upstream_error(
    exc: BaseException, host: str, timeout: tuple[float, float], answered: bool = False
) -> UpstreamError:
    """The UpstreamError saying, without internals, why the call to `host`
    failed with `exc`. `timeout`: (connect, read) seconds, as the settings
    give them."""
    code = classify(exc, answered) or "unreachable"
    status, template = FAILURES[code]
    reason = tls_reason(exc) if code == "tls_error" else ""
    if code == "unreachable":
        log.warning("cannot reach %s: %s", host, exc.__class__.__name__)
    message = template.format(host=host, connect=timeout[0], read=timeout[1], reason=reason)
    return UpstreamError(message, status=status, code=code)
