"""Faults in a remote's stream: endless lines, invalid UTF-8, silence.

A fault before the remote's first item gets an error status in the surface's
shape (nothing has gone to the client yet); after it, the in-band error of
the surface. Either way the message names the remote, and the log has a
warning, never a traceback. Through gunicorn's gevent workers, with the fake
upstream on loopback.
"""

import json
import socket
import threading
import time

import pytest
import requests

from app.remotes import sse
from tests.support.config import relay_settings
from tests.support.fake_upstream import Reply, chunk, completion
from tests.support.models import create_model
from tests.support.servers import GunicornServer

LIMIT = 65536
TEN_MB = 10 * 1024 * 1024
TIMEOUT = 30  # bounds every wait on the relay


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    """A relay with a 1 s read timeout and 64 KiB lines."""
    workdir = tmp_path_factory.mktemp("stream-faults")
    server = GunicornServer(
        relay_settings(
            workdir,
            RELAY_READ_TIMEOUT="1",
            RELAY_MAX_SSE_LINE_BYTES=str(LIMIT),
            # Every test fails the same remote: no cool-down in between.
            RELAY_COOLDOWN_FAILURES="1000000",
        ),
        workdir,
    )
    yield server
    server.stop()


def log_since(relay, start):
    return relay.log()[start:]


def create(relay, upstream, remote_type="openai"):
    name = f"faulty-{remote_type}"
    host = upstream.url + ("/v1" if remote_type == "openai" else "")
    create_model(relay, name, host, remote_type=remote_type)
    return name


# --- The surfaces: how to ask, and how each reports an error -----------------


class Surface:
    def __init__(self, name, path, remote_type, body):
        self.name, self.path, self.remote_type, self.body = name, path, remote_type, body

    def __repr__(self):
        return self.name

    def post(self, relay, model):
        return requests.post(
            relay.url + self.path,
            timeout=TIMEOUT,
            json={"model": model, "stream": True, **self.body},
        )

    def error_body(self, response):
        """The message of a plain (not streamed) error, checking the surface's shape."""
        body = response.json()
        if self.path.startswith("/v1/"):
            assert body["error"]["type"] == "api_error"
            assert set(body["error"]) == {"message", "type", "param", "code"}
            return body["error"]["message"]
        assert set(body) == {"error"} and isinstance(body["error"], str)
        return body["error"]

    def streamed(self, response):
        """(text relayed, message of the in-band error that ended the stream)."""
        assert response.status_code == 200
        if self.path.startswith("/api/"):
            lines = [json.loads(line) for line in response.text.splitlines() if line]
            text = "".join(line.get("message", {}).get("content", "") for line in lines[:-1])
            return text, lines[-1]["error"]
        events = [
            json.loads(line[len("data: ") :])
            for line in response.text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"
        ]
        if self.path == "/v1/chat/completions":
            text = "".join(
                c["choices"][0]["delta"].get("content") or ""
                for c in events[:-1]
                if c.get("choices")
            )
            return text, events[-1]["error"]["message"]
        assert events[0]["type"] == "response.created"
        assert events[-1]["type"] == "response.failed"
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        return text, events[-1]["response"]["error"]["message"]


CHAT = {"messages": [{"role": "user", "content": "hi"}]}
SURFACES = [
    Surface("chat-completions", "/v1/chat/completions", "openai", CHAT),
    Surface("api-chat", "/api/chat", "openai", CHAT),
    Surface("responses", "/v1/responses", "openai", {"input": "hi"}),
    Surface("api-chat-ollama-remote", "/api/chat", "ollama", CHAT),
]


# --- What the remote sends -----------------------------------------------------


def ndjson_part(text):
    return {
        "model": "remote-model",
        "created_at": "2026-01-01T00:00:00Z",
        "done": False,
        "message": {"role": "assistant", "content": text},
    }


def good_items(remote_type):
    """Two items with text "Hello", as the remote type streams them."""
    if remote_type == "openai":
        return [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hello"})]
    return [ndjson_part(""), ndjson_part("Hello")]


def endless_line(remote_type):
    return ("data: " if remote_type == "openai" else "{") + "x" * TEN_MB


def bad_utf8(remote_type):
    if remote_type == "openai":
        return (
            b'data: {"object":"chat.completion.chunk","choices":[{"index":0,'
            b'"delta":{"content":"caf\xe9"},"finish_reason":null}]}\n\n'
        )
    return (
        b'{"model":"remote-model","done":false,"message":{"role":"assistant",'
        b'"content":"caf\xe9"}}\n'
    )


def reply(remote_type, items, **options):
    key = "sse" if remote_type == "openai" else "ndjson"
    return Reply(**{key: items}, **options)


def faulty_reply(remote_type, fault, later):
    """The remote's reply: `fault` first, or after two good items if `later`."""
    head = good_items(remote_type) if later else []
    if fault == "endless line":
        return reply(remote_type, head + [endless_line(remote_type)], done=False)
    if fault == "invalid UTF-8":
        return reply(remote_type, head + [bad_utf8(remote_type)])
    # Silent past RELAY_READ_TIMEOUT, with the headers sent.
    items = head + good_items(remote_type)
    return reply(remote_type, items, stall=3, stall_at=len(head))


def expected_message(upstream, fault):
    return {
        "endless line": f"{upstream.url} sent a stream line over RELAY_MAX_SSE_LINE_BYTES "
        f"({LIMIT} bytes)",
        "invalid UTF-8": f"{upstream.url} sent a stream item that is not valid UTF-8",
        "silence": f"{upstream.url} sent nothing for 1s (RELAY_READ_TIMEOUT)",
    }[fault]


FAULTS = ["endless line", "invalid UTF-8", "silence"]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("surface", SURFACES, ids=repr)
def test_fault_before_the_first_item_is_an_error_status(relay, upstream, surface, fault):
    model = create(relay, upstream, surface.remote_type)
    upstream.reply(faulty_reply(surface.remote_type, fault, later=False))
    start = len(relay.log())
    response = surface.post(relay, model)
    assert response.status_code == (504 if fault == "silence" else 502), response.text
    assert response.headers["Content-Type"] == "application/json"
    assert surface.error_body(response) == expected_message(upstream, fault)
    log = log_since(relay, start)
    assert f"failed before its first item: {expected_message(upstream, fault)}" in log
    assert "Traceback" not in log
    if fault == "endless line":
        # The relay hung up on the remote instead of reading its 10 MB.
        assert upstream.client_went_away.wait(TIMEOUT)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("surface", SURFACES, ids=repr)
def test_fault_after_the_first_item_ends_the_stream_in_band(relay, upstream, surface, fault):
    model = create(relay, upstream, surface.remote_type)
    upstream.reply(faulty_reply(surface.remote_type, fault, later=True))
    start = len(relay.log())
    response = surface.post(relay, model)
    text, error = surface.streamed(response)
    assert text == "Hello"
    assert error == expected_message(upstream, fault)
    log = log_since(relay, start)
    assert f"failed: {expected_message(upstream, fault)}" in log
    assert "Traceback" not in log
    if fault == "endless line":
        assert upstream.client_went_away.wait(TIMEOUT)


def test_responses_still_begin_with_response_created(relay, upstream):
    model = create(relay, upstream)
    response = requests.post(
        relay.url + "/v1/responses",
        timeout=TIMEOUT,
        json={"model": model, "input": "hi", "stream": True},
    )
    assert response.status_code == 200
    types = [
        json.loads(line[len("data: ") :])["type"]
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"


def test_a_remote_that_ends_before_any_item(relay, upstream):
    """Nothing but [DONE]: no failure before the first item, so 200 and the
    surface's own account of an answer that never finished."""
    model = create(relay, upstream)
    upstream.reply(reply("openai", []))
    start = len(relay.log())
    response = requests.post(
        relay.url + "/v1/chat/completions",
        timeout=TIMEOUT,
        json={"model": model, "stream": True, **CHAT},
    )
    assert response.status_code == 200
    assert "Traceback" not in log_since(relay, start)


def test_silence_before_the_first_item_on_the_messages_surface(relay, upstream):
    model = create(relay, upstream)
    upstream.reply(faulty_reply("openai", "silence", later=False))
    response = requests.post(
        relay.url + "/v1/messages",
        timeout=TIMEOUT,
        json={"model": model, "max_tokens": 100, "stream": True, **CHAT},
    )
    assert response.status_code == 504, response.text
    assert response.json() == {
        "type": "error",
        "error": {"type": "api_error", "message": expected_message(upstream, "silence")},
    }


def test_endless_lines_at_the_default_cap_leave_the_worker_responsive(relay_with, upstream):
    # Every request on the same worker; all of them fail the same remote.
    relay = relay_with(workers=1, RELAY_COOLDOWN_FAILURES="1000000")
    model = create(relay, upstream)
    streams = 8
    upstream.reply(*[reply("openai", [endless_line("openai")], done=False) for _ in range(streams)])
    results = []

    def ask():
        response = requests.post(
            relay.url + "/v1/chat/completions",
            timeout=TIMEOUT,
            json={"model": model, "stream": True, **CHAT},
        )
        results.append((response.status_code, response.json()["error"]["message"]))

    threads = [threading.Thread(target=ask) for _ in range(streams)]
    for thread in threads:
        thread.start()
    tags = requests.get(relay.url + "/api/tags", timeout=TIMEOUT)
    assert tags.status_code == 200
    for thread in threads:
        thread.join(TIMEOUT)
    assert (
        results
        == [
            (
                502,
                f"{upstream.url} sent a stream line over RELAY_MAX_SSE_LINE_BYTES (4194304 bytes)",
            )
        ]
        * streams
    )
    assert "Traceback" not in relay.log()


def test_a_client_that_leaves_while_the_remote_is_silent_closes_it(relay_with, upstream):
    """The wait for the remote's first item happens before the response
    starts; the client is watched during it as during the stream."""
    relay = relay_with(workers=1, RELAY_READ_TIMEOUT="30", RELAY_COOLDOWN_FAILURES="1000000")
    model = create(relay, upstream)
    upstream.reply(faulty_reply("openai", "silence", later=False))
    body = json.dumps({"model": model, "stream": True, **CHAT}).encode()
    client = socket.create_connection(("127.0.0.1", relay.port), timeout=TIMEOUT)
    client.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        % (relay.port, len(body))
        + body
    )
    deadline = time.monotonic() + TIMEOUT
    while not upstream.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the relay now waits for the first item
    client.close()
    # The relay hangs up at once (and says so); the remote notices when it
    # writes (after 3 s). Had the relay kept waiting, it would have read the
    # whole answer.
    deadline = time.monotonic() + TIMEOUT
    while "client went away" not in relay.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = relay.log()
    assert f"client went away; closed the stream from {upstream.url}" in log
    assert "Traceback" not in log
    assert upstream.client_went_away.wait(TIMEOUT)


def test_a_client_that_leaves_mid_stream_closes_the_remote_quietly(relay, upstream):
    model = create(relay, upstream)
    upstream.reply(Reply(sse=good_items("openai"), hold=True))
    start = len(relay.log())
    response = requests.post(
        relay.url + "/v1/chat/completions",
        stream=True,
        timeout=TIMEOUT,
        json={"model": model, "stream": True, **CHAT},
    )
    next(response.iter_lines())
    response.close()
    assert upstream.client_went_away.wait(TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while "client went away" not in log_since(relay, start) and time.monotonic() < deadline:
        time.sleep(0.05)
    log = log_since(relay, start)
    assert f"client went away; closed the stream from {upstream.url}" in log
    assert "Traceback" not in log and "failed in the relay" not in log


# --- The line and event reader itself ----------------------------------------


def pieces(data, size):
    return [data[i : i + size] for i in range(0, len(data), size)]


SSE_TEXT = (
    b"\xef\xbb\xbf: hello\r\ndata: a\r\ndata:b\r\rdata: c\n\n: keep-alive\r\n"
    b'event: error\nid: 7\ndata: {"x":1}\n\ndata:\n\ndata: tail'
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_sse_lines_and_events_wherever_the_pieces_are_cut(size):
    lines = list(sse.lines(pieces(SSE_TEXT, size), 100, sse=True))
    assert lines[1:] == [
        b"data: a",
        b"data:b",
        b"",
        b"data: c",
        b"",
        b": keep-alive",
        b"event: error",
        b"id: 7",
        b'data: {"x":1}',
        b"",
        b"data:",
        b"",
        b"data: tail",
    ]
    assert list(sse.events(iter(lines), 100)) == [
        ("message", "a\nb"),
        ("message", "c"),
        ("error", '{"x":1}'),
        ("message", "tail"),
    ]


def test_ndjson_lines_end_at_lf_only():
    assert list(sse.lines([b'{"a":1}\r\n{"b":', b"2}\n", b"\n", b"{}"], 100)) == [
        b'{"a":1}\r',
        b'{"b":2}',
        b"",
        b"{}",
    ]


@pytest.mark.parametrize("is_sse", [True, False])
def test_a_line_over_the_limit_raises_once_the_limit_is_passed(is_sse):
    exact = list(sse.lines([b"x" * 50, b"y" * 50 + b"\n"], 100, sse=is_sse))
    assert exact == [b"x" * 50 + b"y" * 50]
    read = []

    def endless():
        while True:
            read.append(1)
            yield b"x" * 10

    with pytest.raises(sse.LineTooLong) as raised:
        list(sse.lines(endless(), 100, sse=is_sse))
    assert raised.value.limit == 100 and len(read) == 11


def test_an_event_of_many_short_lines_is_capped_too():
    with pytest.raises(sse.EventTooLong):
        list(sse.events(sse.lines([b"data: x\n" * 100 + b"\n"], 1000, sse=True), 500))


def test_invalid_utf8_is_named_as_such():
    with pytest.raises(sse.NotUTF8):
        list(sse.events([b"data: caf\xe9"], 100))
    # A comment is not even decoded.
    assert list(sse.events([b": caf\xe9", b"data: ok"], 100)) == [("message", "ok")]


@pytest.mark.parametrize("surface", SURFACES, ids=repr)
def test_finished_streams_give_their_connection_back(relay_with, upstream, surface):
    """A stream read to its end leaves the connection to the remote in the
    pool: ten streams one after another cost one connection, not ten (each a
    DNS lookup and a TCP, often TLS, handshake)."""
    relay = relay_with(workers=1)
    model = create(relay, upstream, surface.remote_type)
    for _ in range(10):
        upstream.reply(
            reply(
                surface.remote_type,
                good_items(surface.remote_type)
                + (
                    [chunk({}, finish_reason="stop")]
                    if surface.remote_type == "openai"
                    else [{**ndjson_part(""), "done": True, "done_reason": "stop"}]
                ),
            )
        )
    for _ in range(10):
        response = surface.post(relay, model)
        assert response.status_code == 200 and "Hello" in response.text, response.text
    assert len({recorded.peer for recorded in upstream.requests[-10:]}) == 1


@pytest.mark.parametrize(
    "remote_type,path,body",
    [
        ("openai", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}),
        ("openai", "/v1/responses", {"input": "Hi"}),
        (
            "openai",
            "/v1/messages",
            {"max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]},
        ),
        ("ollama", "/api/chat", {"messages": [{"role": "user", "content": "Hi"}]}),
    ],
    ids=lambda value: value if isinstance(value, str) and value.startswith("/") else None,
)
def test_whole_answers_reuse_one_connection(relay_with, upstream, remote_type, path, body):
    """Non-streamed calls go straight to urllib3's pool (app/remotes/http/transport.py):
    ten answers one after another cost one connection to the remote, not ten."""
    relay = relay_with(workers=1)
    model = create(relay, upstream, remote_type)
    for _ in range(10):
        response = requests.post(
            relay.url + path, json=dict(body, model=model, stream=False), timeout=TIMEOUT
        )
        # The fake upstream's canned answers: "Hello from upstream", "Hi from ollama".
        answer = "Hello from upstream" if remote_type == "openai" else "Hi from ollama"
        assert response.status_code == 200 and answer in response.text, response.text
    assert len({recorded.peer for recorded in upstream.requests[-10:]}) == 1


def test_a_pooled_connection_the_remote_closed_is_not_reused(relay_with, upstream):
    """Providers close idle keep-alive connections (after a few seconds, without
    a word in the answer before). The relay sees that before it reuses one: the
    next call goes out on a new connection, at once: even with retries off it
    does not fail (urllib3, or app.fast.pool_liveness, checks the pooled socket)."""
    relay = relay_with(workers=1, RELAY_RETRIES="0")
    model = create(relay, upstream)
    path, body = "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}
    upstream.reply(Reply(json=completion(), close=True))
    seen = len(upstream.requests)
    for _ in range(2):
        response = requests.post(
            relay.url + path, json=dict(body, model=model, stream=False), timeout=TIMEOUT
        )
        assert response.status_code == 200 and "Hello" in response.text, response.text
    calls = upstream.requests[seen:]
    assert len(calls) == 2 and calls[0].peer != calls[1].peer
