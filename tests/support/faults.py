"""The faults a remote can commit, the surfaces a client can ask on, and a look
at a gunicorn worker from outside (its connections and memory), shared by
tests/remotes/test_fault_injection.py and ops/bench/soak.

A Fault is the replies the fake upstream gives to the successive calls of one
client request (retries and fallbacks included) and the Outcome the client
must see. A Surface knows how to ask and how to read each answer shape,
checking the surface's own error shape on the way.
"""

import json
import os
from dataclasses import dataclass

import requests

from tests.support.fake_upstream import Reply, chunk, completion, text_stream

# The relay these faults expect: a 1 s RELAY_READ_TIMEOUT, 64 KiB lines,
# RELAY_RETRIES=2 (three calls) and RELAY_RETRY_MAX_WAIT=10.
READ_TIMEOUT = 1
LINE_LIMIT = 64 * 1024
RELAY_SETTINGS = {
    "RELAY_REMOTE_ALLOWLIST": "127.0.0.1",
    "RELAY_READ_TIMEOUT": str(READ_TIMEOUT),
    "RELAY_MAX_SSE_LINE_BYTES": str(LINE_LIMIT),
    "RELAY_RETRIES": "2",
    "RELAY_RETRY_MAX_WAIT": "10",
    # Every fault fails the same remote, on purpose: cool-down would turn
    # the next cases into 503s.
    "RELAY_COOLDOWN_FAILURES": "1000000",
}
CALLS = 3  # 1 + RELAY_RETRIES
STALL = 3  # seconds of silence: past READ_TIMEOUT
TEN_MB = 10 * 1024 * 1024
FALLBACK_ANSWER = "from the fallback"
CHAT = [{"role": "user", "content": "hi"}]


@dataclass
class Outcome:
    status: int  # of the client's answer (200 for an in-band error)
    message: str = None  # the error's message; None: an answer
    inband: bool = False  # the error ends a stream that has begun
    answer: str = None  # the text of the answer
    retry_after: str = None
    calls: int = 1  # calls the remote gets


@dataclass
class Fault:
    name: str
    replies: list  # for the successive calls; the fake's default answer follows
    outcome: Outcome


def _reset():
    return Reply(reset_before_headers=True)


def _failure(status, **headers):
    return Reply(
        status=status, json={"error": {"message": f"remote says {status}"}}, headers=headers
    )


_HEAD = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hello"})]
_MORE = [chunk({"content": " world"}), chunk({}, finish_reason="stop")]
_BAD_JSON = 'data: {"choices": [{"delta": {"content": "Hel\n\n'
_BAD_UTF8 = (
    b'data: {"object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"content":"caf\xe9"},"finish_reason":null}]}\n\n'
)
_HTML = "<html><body><h1>Please sign in to the proxy</h1></body></html>"
_GOOD = "Hello from upstream"  # what the fake answers by default
ANSWERED = Outcome(200, answer=_GOOD)  # a request that meets no fault


def faults(stream, host):
    """Every fault for a streamed (or not) request to the remote at `host`."""
    broke = f"the connection to {host} broke off mid-response"
    silent = f"{host} sent nothing for {READ_TIMEOUT}s (RELAY_READ_TIMEOUT)"
    too_long = f"{host} sent a stream line over RELAY_MAX_SSE_LINE_BYTES ({LINE_LIMIT} bytes)"
    found = [
        Fault(
            "reset-before-headers",
            [_reset()] * CALLS,
            Outcome(502, f"{host} closed the connection before answering", calls=CALLS),
        ),
        Fault(
            "html-200",
            [Reply(text=_HTML, headers={"Content-Type": "text/html"})],
            Outcome(
                502, f"{host} answered with text/html, not " + ("a stream" if stream else "JSON")
            ),
        ),
        # Longer than RELAY_RETRY_MAX_WAIT: straight to the client, which
        # needs the Retry-After to come back in time.
        Fault(
            "429-storm",
            [_failure(429, **{"Retry-After": "120"})],
            Outcome(429, "API error (429): remote says 429", retry_after="120"),
        ),
        Fault(
            "5xx",
            [_failure(503)] * CALLS,
            Outcome(503, "API error (503): remote says 503", calls=CALLS),
        ),
        Fault("transient-reset", [_reset()], Outcome(200, answer=_GOOD, calls=2)),
        Fault("transient-5xx", [_failure(502)], Outcome(200, answer=_GOOD, calls=2)),
        Fault(
            "transient-429",
            [_failure(429, **{"Retry-After": "0"})],
            Outcome(200, answer=_GOOD, calls=2),
        ),
        # The model's own remote keeps failing; its fallback (another path of
        # the same fake) answers.
        Fault(
            "fallback",
            [_reset()] * CALLS
            + [
                Reply(sse=text_stream(FALLBACK_ANSWER))
                if stream
                else Reply(json=completion(FALLBACK_ANSWER))
            ],
            Outcome(200, answer=FALLBACK_ANSWER, calls=CALLS + 1),
        ),
    ]
    if not stream:
        return found + [
            Fault(
                "reset-mid-body",
                [Reply(json=completion(), cut_after=40, reset=True)],
                Outcome(502, broke),
            ),
            Fault("stall", [Reply(json=completion(), delay=STALL)], Outcome(504, silent)),
            Fault(
                "malformed-json",
                [Reply(body=b'{"choices": [{"message": ')],
                Outcome(502, f"{host} answered with a body that is not JSON"),
            ),
            Fault(
                "10mb-line",
                [Reply(body=b"x" * TEN_MB)],
                Outcome(502, f"{host} answered with a body that is not JSON"),
            ),
            Fault(
                "invalid-utf8",
                [
                    Reply(
                        body=json.dumps(completion("café"))
                        .encode()
                        .replace(b"caf\\u00e9", b"caf\xe9")
                    )
                ],
                Outcome(502, f"{host} answered with a body that is not valid UTF-8"),
            ),
        ]
    late = dict(status=200, inband=True)
    return found + [
        Fault(
            "reset-mid-stream",
            [Reply(sse=_HEAD + _MORE, cut_after=2, reset=True)],
            Outcome(message=broke, **late),
        ),
        Fault("stall-first", [Reply(sse=_HEAD + _MORE, stall=STALL)], Outcome(504, silent)),
        Fault(
            "stall-later",
            [Reply(sse=_HEAD + _MORE, stall=STALL, stall_at=2)],
            Outcome(message=silent, **late),
        ),
        Fault(
            "malformed-json-first",
            [Reply(sse=[_BAD_JSON])],
            Outcome(502, f"{host} sent a stream item that is not JSON"),
        ),
        Fault(
            "malformed-json-later",
            [Reply(sse=_HEAD + [_BAD_JSON])],
            Outcome(message=f"{host} sent a stream item that is not JSON", **late),
        ),
        Fault(
            "10mb-line-first",
            [Reply(sse=["data: " + "x" * TEN_MB], done=False)],
            Outcome(502, too_long),
        ),
        Fault(
            "10mb-line-later",
            [Reply(sse=_HEAD + ["data: " + "x" * TEN_MB], done=False)],
            Outcome(message=too_long, **late),
        ),
        Fault(
            "invalid-utf8-first",
            [Reply(sse=[_BAD_UTF8])],
            Outcome(502, f"{host} sent a stream item that is not valid UTF-8"),
        ),
        Fault(
            "invalid-utf8-later",
            [Reply(sse=_HEAD + [_BAD_UTF8])],
            Outcome(message=f"{host} sent a stream item that is not valid UTF-8", **late),
        ),
    ]


def fault_names(stream):
    return [fault.name for fault in faults(stream, "")]


# --- The surfaces -------------------------------------------------------------


def _sse(text):
    """(event type or None, parsed data) of each SSE event, [DONE] left out."""
    events = []
    for block in text.split("\n\n"):
        kind, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        if data and data != ["[DONE]"]:
            events.append((kind, json.loads("\n".join(data))))
    return events


class Surface:
    """One API surface: how to ask it, and how its answers and errors look."""

    def __init__(self, name, path, body):
        self.name, self.path, self._body = name, path, body

    def __repr__(self):
        return self.name

    def ask(self, url, model, stream, timeout):
        body = {"model": model, "stream": stream, **self._body}
        return requests.post(url + self.path, json=body, timeout=timeout)

    def error(self, response, status):
        """The message of a plain error, after checking the surface's exact shape."""
        body = response.json()
        if self.name == "messages":
            kind = {429: "rate_limit_error", 503: "overloaded_error"}.get(status, "api_error")
            assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
            assert body["error"]["type"] == kind
            return body["error"]["message"]
        if self.path.startswith("/v1/"):
            return _openai_error(body, status)
        assert set(body) == {"error"} and isinstance(body["error"], str)
        return body["error"]

    def answer(self, response):
        """The text of a successful answer that was not streamed."""
        body = response.json()
        if self.name == "chat":
            return body["choices"][0]["message"]["content"]
        if self.name == "api":
            assert body["done"] is True
            return body["message"]["content"]
        if self.name == "responses":
            assert body["status"] == "completed"
            return "".join(
                part["text"]
                for item in body["output"]
                if item["type"] == "message"
                for part in item["content"]
            )
        return "".join(block["text"] for block in body["content"] if block["type"] == "text")

    def streamed(self, response):
        """(text relayed, message of the in-band error or None), checking that
        a stream without error ends as the surface ends a complete answer."""
        if self.name == "api":
            lines = [json.loads(line) for line in response.text.splitlines() if line]
            text = "".join((line.get("message") or {}).get("content", "") for line in lines)
            if "error" in lines[-1]:
                assert set(lines[-1]) == {"error"} and isinstance(lines[-1]["error"], str)
                return text, lines[-1]["error"]
            assert lines[-1]["done"] is True
            return text, None
        events = _sse(response.text)
        if self.name == "chat":
            text = "".join(
                e["choices"][0]["delta"].get("content") or "" for _, e in events if e.get("choices")
            )
            if "error" in events[-1][1]:
                return text, _openai_error(events[-1][1], 502)
            assert response.text.endswith("data: [DONE]\n\n")
            return text, None
        if self.name == "responses":
            assert events[0][1]["type"] == "response.created"
            text = "".join(
                e["delta"] for _, e in events if e["type"] == "response.output_text.delta"
            )
            last = events[-1][1]
            if last["type"] == "response.failed":
                assert last["response"]["error"]["code"] == "server_error"
                return text, last["response"]["error"]["message"]
            assert last["type"] == "response.completed"
            return text, None
        assert events[0][0] == "message_start"
        text = "".join(
            e["delta"]["text"]
            for kind, e in events
            if kind == "content_block_delta" and e["delta"]["type"] == "text_delta"
        )
        kind, last = events[-1]
        if kind == "error":
            assert last["type"] == "error" and last["error"]["type"] == "api_error"
            return text, last["error"]["message"]
        assert kind == "message_stop"
        return text, None


def check_answer(surface, outcome, stream, response):
    """Assert that `response` is `outcome` as `surface` gives it: the status,
    the surface's error shape and message, or the text of the answer."""
    assert response.status_code == outcome.status, response.text[:500]
    if outcome.retry_after:
        assert response.headers["Retry-After"] == outcome.retry_after
    if outcome.status != 200:
        assert response.headers["Content-Type"] == "application/json"
        assert surface.error(response, outcome.status) == outcome.message
    elif not stream:
        assert surface.answer(response) == outcome.answer
    else:
        text, error = surface.streamed(response)
        assert error == outcome.message
        # What the remote sent before the fault reached the client.
        assert text == ("Hello" if outcome.inband else outcome.answer)


def _openai_error(body, status):
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if status == 429:
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    else:
        assert error["type"] == "api_error"
    return error["message"]


SURFACES = [
    Surface("chat", "/v1/chat/completions", {"messages": CHAT}),
    Surface("api", "/api/chat", {"messages": CHAT}),
    Surface("responses", "/v1/responses", {"input": "hi"}),
    Surface("messages", "/v1/messages", {"messages": CHAT, "max_tokens": 100}),
]


# --- A gunicorn worker, seen from /proc ------------------------------------------


def children(pid):
    """The pids of a process's children (gunicorn's workers, for its master)."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(child) for child in handle.read().split()]
    return found


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for {pid}")


def established_to(pid, port):
    """How many of `pid`'s TCP connections to `port` are ESTABLISHED: its own
    sockets (by inode, from its descriptors) in the kernel's table."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count
