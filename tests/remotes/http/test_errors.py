"""One map from failures to the upstream errors clients see (app.remotes.http.errors).

Every exception class urllib3.exceptions exports has an entry of its own, so
a new urllib3 that adds one fails here until someone decides what it means.
Failures are told apart by type (and, for a new connection, by the OS error
that failed it), never by the text of their message: the same failure
worded as another platform words it maps the same way.
"""

import errno
import http.client
import inspect
import socket
import ssl

import pytest
import urllib3.exceptions
from urllib3.exceptions import (
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from app import config
from app.errors import UpstreamError
from app.remotes.http.client import RemoteHTTP
from app.remotes.http.errors import ERROR_MAP, FAILURES, classify, upstream_error
from app.remotes.policy import RemoteHostPolicy
from app.remotes.retry import RETRY_CODES
from tests.support.fake_upstream import Reply

HOST = "https://api.example.com"
TIMEOUT = (10.0, 300.0)

URLLIB3_EXCEPTIONS = sorted(
    {
        cls
        for _, cls in inspect.getmembers(urllib3.exceptions, inspect.isclass)
        if issubclass(cls, Exception)
    },
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize("cls", URLLIB3_EXCEPTIONS, ids=lambda cls: cls.__name__)
def test_every_urllib3_exception_has_an_entry_of_its_own(cls):
    assert cls in ERROR_MAP, f"urllib3.exceptions.{cls.__name__} is not in ERROR_MAP"
    before, during = ERROR_MAP[cls]
    assert before in FAILURES and during in FAILURES


def test_every_code_a_retry_reads_is_one_the_map_gives():
    given = {code for codes in ERROR_MAP.values() for code in codes}
    assert RETRY_CODES <= given | {"unreachable"}
    assert set(FAILURES) == given


def _new_connection(cause):
    """A failed new connection as urllib3 raises it: the OS error as its cause."""
    error = NewConnectionError(None, f"Failed to establish a new connection: {cause}")
    error.__cause__ = cause
    return error


# (failure, before the head, while the body is read); the messages are
# those of another platform, or of another failure, on purpose.
CASES = {
    "refused": (
        _new_connection(ConnectionRefusedError(errno.ECONNREFUSED, "Verbindung verweigert")),
        "connection_refused",
    ),
    "refused, wrapped": (
        MaxRetryError(None, "/", _new_connection(ConnectionRefusedError(errno.ECONNREFUSED, "x"))),
        "connection_refused",
    ),
    "no route": (_new_connection(OSError(errno.EHOSTUNREACH, "No route to host")), "unreachable"),
    "reset while connecting": (
        _new_connection(ConnectionResetError(errno.ECONNRESET, "Connection refused")),
        "connection_reset",
    ),
    "dns (glibc)": (
        NameResolutionError(
            "h", None, socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        ),
        "dns_error",
    ),
    "dns (BSD libc), as a new connection's cause": (
        _new_connection(socket.gaierror(socket.EAI_NONAME, "nodename nor servname provided")),
        "dns_error",
    ),
    "dns, temporary": (
        _new_connection(socket.gaierror(socket.EAI_AGAIN, "Temporary failure")),
        "dns_error",
    ),
    "connect timeout": (
        urllib3.exceptions.ConnectTimeoutError(None, "Connection refused"),
        "connect_timeout",
    ),
    "read timeout": (ReadTimeoutError(None, "/", "Connection reset by peer"), "read_timeout"),
    "socket timeout": (socket.timeout("The read operation timed out"), "read_timeout"),
    "tls": (SSLError(ssl.SSLError(1, "Read timed out")), "tls_error"),
    "proxy": (ProxyError("Unable to connect to proxy", OSError("Read timed out")), "proxy_error"),
    "proxy, wrapped": (
        MaxRetryError(None, "/", ProxyError("Unable to connect to proxy", OSError())),
        "proxy_error",
    ),
    "invalid url": (urllib3.exceptions.LocationParseError("http://[x"), "unreachable"),
}


@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_a_failure_is_known_by_its_type(case):
    exc, code = CASES[case]
    assert classify(exc) == code


CLOSED = {
    "urllib3, aborted": ProtocolError("Connection aborted.", ConnectionResetError(104, "x")),
    "urllib3, broken": ProtocolError("Connection broken: IncompleteRead", None),
    "http.client": http.client.RemoteDisconnected("Remote end closed connection"),
    "incomplete": http.client.IncompleteRead(b"{", 40),
    "OS, reset": ConnectionResetError(errno.ECONNRESET, "Connection refused"),
    "OS, pipe": BrokenPipeError(errno.EPIPE, "Broken pipe"),
}


@pytest.mark.parametrize("case", CLOSED, ids=CLOSED)
def test_a_closed_connection_is_a_reset_before_the_answer_and_broken_within_it(case):
    exc = CLOSED[case]
    assert classify(exc, answered=False) == "connection_reset"
    assert classify(exc, answered=True) == "connection_broken"


def test_what_is_no_failure_of_the_way_to_the_remote_is_not_mapped():
    assert classify(ValueError("invalid header")) is None
    assert classify(KeyError("x")) is None


def test_the_messages_are_the_ones_clients_have_always_read():
    def error(exc, answered=False):
        found = upstream_error(exc, HOST, TIMEOUT, answered)
        return found.status, found.code, found.message

    verify = ssl.SSLCertVerificationError(1, "certificate verify failed: Hostname mismatch")
    assert error(SSLError(verify)) == (
        502,
        "tls_error",
        f"TLS error talking to {HOST}: certificate verify failed "
        "(a corporate CA bundle can be set with RELAY_CA_BUNDLE)",
    )
    # The reason comes from the type inside, not from the words of the message.
    handshake = ssl.SSLError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] (in words only)")
    assert error(SSLError(handshake))[2] == (
        f"TLS error talking to {HOST}: handshake failed "
        "(a corporate CA bundle can be set with RELAY_CA_BUNDLE)"
    )
    assert error(urllib3.exceptions.ConnectTimeoutError(None, "x")) == (
        504,
        "connect_timeout",
        f"timed out connecting to {HOST} after 10s (RELAY_CONNECT_TIMEOUT)",
    )
    assert error(ReadTimeoutError(None, "/", "x"), answered=True) == (
        504,
        "read_timeout",
        f"{HOST} sent nothing for 300s (RELAY_READ_TIMEOUT)",
    )
    assert error(CLOSED["urllib3, aborted"]) == (
        502,
        "connection_reset",
        f"{HOST} closed the connection before answering",
    )
    assert error(CLOSED["urllib3, aborted"], answered=True) == (
        502,
        "connection_broken",
        f"the connection to {HOST} broke off mid-response",
    )
    assert error(CASES["dns (glibc)"][0]) == (
        502,
        "dns_error",
        f"cannot resolve the remote host {HOST} (DNS lookup failed)",
    )
    assert error(CASES["refused"][0]) == (
        502,
        "connection_refused",
        f"{HOST} refused the connection",
    )
    assert error(CASES["proxy"][0]) == (
        502,
        "proxy_error",
        f"the outbound proxy failed to connect to {HOST}",
    )
    assert error(urllib3.exceptions.DecodeError("x")) == (
        502,
        "undecodable",
        f"{HOST} answered with a body that does not decode",
    )


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "public"])
def test_a_body_that_does_not_decode_fails_alike_on_a_new_and_a_kept_connection(upstream, fast):
    """A real remote, in-process: the first call opens a connection, the
    second reuses it (the kept-connection fast path, when on); both fail as
    the map says."""
    settings = config.load(
        {"RELAY_RETRIES": 0, "RELAY_FAST_PATHS": fast, "RELAY_REMOTE_ALLOWLIST": "127.0.0.1"},
        environ={},
    )
    http = RemoteHTTP(settings, RemoteHostPolicy(["127.0.0.1"]))
    garbage = Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    upstream.reply(Reply(json={}), garbage, garbage)
    url = upstream.url + "/v1/chat/completions"
    http.request("POST", url, json={}).close()
    seen = []
    for _ in range(2):
        with pytest.raises(UpstreamError) as raised:
            http.request("POST", url, json={})
        seen.append((raised.value.code, raised.value.message))
    assert (
        seen == [("undecodable", f"{upstream.url} answered with a body that does not decode")] * 2
    )
    assert len({call.peer for call in upstream.requests[:2]}) == 1  # new, then kept
