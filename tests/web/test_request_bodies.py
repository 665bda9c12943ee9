"""Request bodies as gunicorn hands them on: with a Content-Length or chunked,
over the size limit, or cut short by a client that stopped sending. Raw
requests on a socket, since HTTP clients do not send a body shorter than
they announce. The relay reads the server's input stream itself
(app/api/body.py), so each way a body arrives is checked through gunicorn.
"""

import json
import socket

import pytest

LIMIT = 4096
TIMEOUT = 30


@pytest.fixture
def relay(module_relays):
    """One relay for the module: its tests change nothing it holds."""
    return module_relays.get(RELAY_MAX_BODY_BYTES=str(LIMIT))


def _exchange(relay, head, body=b"", end=True):
    """(status, JSON body) of one request written as given; `end`: False
    shuts the socket for writing after `body`, mid-request."""
    host, port = relay.url.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(head.encode("ascii") + b"\r\n" + body)
        if not end:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            head_end = answer.find(b"\r\n\r\n")
            if head_end >= 0:
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in answer[:head_end].split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    None,
                )
                if length is not None and len(answer) >= head_end + 4 + length:
                    break
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer[answer.find(b"\r\n\r\n") + 4 :])


def _head(length=None, chunked=False):
    lines = ["POST /api/show HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return "\r\n".join(lines) + "\r\n"


def _chunked(data, size=100):
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


ASK = json.dumps({"model": "ghost"}).encode()  # read and parsed: an unknown model, 404
BIG = json.dumps({"model": "ghost", "system": "x" * LIMIT}).encode()


def test_a_body_with_its_length_is_read(relay):
    status, body = _exchange(relay, _head(len(ASK)), ASK)
    assert (status, body) == (404, {"error": "model 'ghost' not found"})


def test_a_chunked_body_is_read(relay):
    status, body = _exchange(relay, _head(chunked=True), _chunked(ASK, size=5))
    assert (status, body) == (404, {"error": "model 'ghost' not found"})


def test_a_length_over_the_limit_is_refused_before_the_body(relay):
    status, body = _exchange(relay, _head(len(BIG)), b"", end=False)
    assert status == 413 and "RELAY_MAX_BODY_BYTES" in body["error"]


def test_a_chunked_body_over_the_limit_is_refused(relay):
    status, body = _exchange(relay, _head(chunked=True), _chunked(BIG))
    assert status == 413 and "RELAY_MAX_BODY_BYTES" in body["error"]


def test_a_body_cut_short_is_not_acted_on(relay):
    # Valid JSON, but not all the client announced: it may be a prefix.
    status, body = _exchange(relay, _head(len(ASK) + 10), ASK, end=False)
    assert status == 400
    assert body["error"] == (
        f"request body ended after {len(ASK)} of the {len(ASK) + 10} "
        f"bytes its Content-Length announced"
    )
