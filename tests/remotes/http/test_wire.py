"""Direct connections to remotes read answers as urllib3's own do.

They parse response heads without the email package (app.fast.response_head, for
less CPU per call); every head must still come out as http.client's own
parser makes it: the same headers, names and values, in order, duplicates
kept, and odd heads (folded lines, lines with no colon, bytes beyond ASCII)
exactly as the email parser reads them. A whole answer on a connection the
pool kept open is read by http.client under urllib3 (app.fast.kept_connection):
decoded as urllib3 decodes one on a new connection.
"""

import gzip
import http.client
import io
import json
import socket
import threading
import zlib

import pytest
import requests

from app.fast.response_head import Response, parse_headers, read_head
from tests.support.fake_upstream import Reply, completion

HEADS = {
    "plain": b"Content-Type: application/json\r\nContent-Length: 12\r\n\r\n",
    "provider": (
        b"Date: Tue, 01 Dec 2026 10:00:00 GMT\r\nContent-Type: text/event-stream; "
        b"charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
        b"x-ratelimit-remaining-requests: 499\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
        b"openai-processing-ms: 35\r\nCF-RAY: 8a1b2c-LHR\r\n\r\n"
    ),
    "blanks around values": b"Retry-After:   7  \r\nX-Empty:\r\nX-Tab:\tv\r\n\r\n",
    "bare LF": b"Content-Type: application/json\nContent-Length: 2\n\n",
    "latin-1 value": b"X-Name: caf\xe9\r\n\r\n",
    "folded line": b"X-Long: first\r\n second part\r\nContent-Length: 0\r\n\r\n",
    "no colon": b"Content-Length: 0\r\nnot a header\r\nX-After: 1\r\n\r\n",
    "space before colon": b"Content-Length : 5\r\nX-Other: 1\r\n\r\n",
    "ended by EOF": b"Content-Type: text/plain\r\n",
    "empty": b"\r\n",
}


@pytest.mark.parametrize("raw", HEADS.values(), ids=HEADS.keys())
def test_a_head_reads_as_http_client_reads_it(raw):
    ours = parse_headers(read_head(io.BytesIO(raw)))
    theirs = http.client.parse_headers(io.BytesIO(raw))
    assert isinstance(ours, http.client.HTTPMessage)
    assert ours.items() == theirs.items()
    assert ours.get_all("set-cookie") == theirs.get_all("set-cookie")
    assert ours.get("content-length") == theirs.get("content-length")
    assert (ours.defects == []) == (theirs.defects == [])
    assert ours.get_payload() == theirs.get_payload()


def test_limits_are_http_clients():
    with pytest.raises(http.client.LineTooLong):
        read_head(io.BytesIO(b"X-Big: " + b"a" * 70000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        read_head(io.BytesIO(b"X-A: 1\r\n" * 101 + b"\r\n"))


ANSWERS = {  # what a server sends: what the response must say, read as http.client reads it
    "length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "until close": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello",
    "after 100": b"HTTP/1.1 100 Continue\r\nX-Ignored: 1\r\n\r\nHTTP/1.1 404 Not Found\r\n"
    b"Content-Length: 5\r\nConnection: close\r\n\r\nhello",
    "no content": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
    "HTTP/1.0": b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
}


def _answered(answer, response_class):
    """The response of response_class to one request to a socket that sends `answer`."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(answer)
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    connection = http.client.HTTPConnection(*server.getsockname(), timeout=10)
    connection.response_class = response_class
    connection.request("GET", "/")
    response = connection.getresponse()
    seen = (
        response.status,
        response.reason,
        response.version,
        response.chunked,
        response.length,
        response.will_close,
        response.getheaders(),
        response.read(),
    )
    connection.close()
    thread.join()
    server.close()
    return seen


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
def test_a_response_begins_as_http_clients_does(answer):
    assert _answered(answer, Response) == _answered(answer, http.client.HTTPResponse)


# What the relay asks for (Accept-Encoding: gzip, deflate), and both at once.
COMPRESSED = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "gzip, deflate": lambda data: zlib.compress(gzip.compress(data)),
}


@pytest.mark.parametrize("encoding", COMPRESSED)
def test_a_compressed_answer_reads_the_same_on_a_new_and_a_kept_connection(
    relay_with, upstream, encoding
):
    relay = relay_with(workers=1)  # both calls from one pool
    response = requests.post(
        relay.url + "/api/create",
        timeout=30,
        json={
            "name": "packed",
            "from": "remote-model",
            "remote_type": "openai",
            "stream": False,
            "remote_host": upstream.url + "/v1",
        },
    )
    assert response.status_code == 200, response.text
    packed = COMPRESSED[encoding](json.dumps(completion("squeezed")).encode())
    broken = packed[: len(packed) // 2] + b"\x00" * 8
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    upstream.reply(
        *[Reply(body=packed, headers=headers)] * 2, *[Reply(body=broken, headers=headers)] * 2
    )
    seen = []
    for _ in range(4):
        response = requests.post(
            relay.url + "/v1/chat/completions",
            timeout=30,
            json={"model": "packed", "messages": [{"role": "user", "content": "Hi"}]},
        )
        seen.append((response.status_code, response.json()))
    assert len({call.peer for call in upstream.requests[:2]}) == 1  # new, then kept
    assert [status for status, _ in seen] == [200, 200, 502, 502]
    assert [answer["choices"][0]["message"]["content"] for _, answer in seen[:2]] == [
        "squeezed"
    ] * 2
    # A body that does not decode fails alike on a kept and a new connection.
    assert seen[2] == seen[3]


class _Recorder:
    """A remote on a raw socket: keeps the bytes of every request it gets, on
    one kept-alive connection, and answers each with a chat completion."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d" % self.server.getsockname()[1]
        self.requests, self.peers = [], []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        answer = json.dumps(completion("recorded")).encode()
        while True:
            try:
                conn, peer = self.server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    head, sep, rest = data.partition(b"\r\n\r\n")
                    length = next(
                        (
                            int(line.split(b":")[1])
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        ),
                        0,
                    )
                    if sep and len(rest) >= length:
                        self.requests.append(head + sep + rest[:length])
                        self.peers.append(peer)
                        data = rest[length:]
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
                        )


def test_a_request_on_a_kept_connection_has_the_bytes_of_one_on_a_new_connection(relay_with):
    """The first call opens a connection (urllib3 writes the request, through
    http.client), the second goes out on it (the relay writes the head
    itself): the remote must not see the difference, byte for byte."""
    remote = _Recorder()
    relay = relay_with(workers=1)
    response = requests.post(
        relay.url + "/api/create",
        timeout=30,
        json={
            "name": "recorded",
            "from": "remote-model",
            "remote_type": "openai",
            "stream": False,
            "remote_host": remote.url + "/v1?api-version=x",
            "remote_api_key": "sk-recorded-key",
        },
    )
    assert response.status_code == 200, response.text
    for _ in range(2):
        response = requests.post(
            relay.url + "/v1/chat/completions",
            timeout=30,
            headers={"X-Request-ID": "same-id"},
            json={"model": "recorded", "messages": [{"role": "user", "content": "caf\u00e9"}]},
        )
        assert response.json()["choices"][0]["message"]["content"] == "recorded"
    first, second = remote.requests
    assert remote.peers[0] == remote.peers[1]  # new, then kept
    assert second == first
    assert first.startswith(
        b"POST /v1/chat/completions?api-version=x HTTP/1.1\r\n"
        b"Host: " + remote.url[len("http://") :].encode() + b"\r\n"
    )
    assert b"\r\nAuthorization: Bearer sk-recorded-key\r\n" in first


@pytest.mark.parametrize(
    "name, value",
    [
        ("X-Id", "a\r\nX-Evil: 1"),
        ("X-Id", "a\nb"),
        ("X-Id", "nul\0"),
        ("Bad Name", "v"),
        ("X:Id", "v"),
    ],
)
def test_a_header_that_could_break_the_head_is_never_written(name, value):
    """The head the relay writes itself refuses what http.client refuses (a
    line break in a value) and more: a name that is not an RFC 9110 token, NUL."""
    from app.fast.kept_connection import request_head as _head

    with pytest.raises(ValueError):
        _head("POST", "/v1/chat/completions", "remote", {name: value})


@pytest.mark.parametrize(
    "scheme, host, port",
    [
        ("http", "127.0.0.1", 8080),
        ("http", "remote.example", 80),
        ("https", "api.openai.com", 443),
        ("https", "gw.example", 8443),
        ("http", "::1", 8000),
        ("https", "b\u00fccher.example", 443),
    ],
)
def test_the_host_header_is_the_one_http_client_sends(scheme, host, port):
    from urllib3.connection import HTTPConnection, HTTPSConnection

    from app.fast.kept_connection import host_header as _host

    conn = (HTTPSConnection if scheme == "https" else HTTPConnection)(host, port)
    http.client.HTTPConnection.putrequest(conn, "GET", "/")
    sent = conn._buffer[1].decode("ascii")  # the line putrequest queued after the request line
    assert sent == f"Host: {_host(conn)}"
