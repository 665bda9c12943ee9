"""A fake OpenAI-compatible (and Ollama-native) upstream: a real HTTP server on loopback.

Tests queue replies with `upstream.reply(...)`; each request takes the next
reply, or the default one. Every request is recorded with its headers and body.
It also serves as a plain-HTTP forward proxy: a request line with an absolute
URL is answered like any other and recorded with the host it named.
"""

import json
import select
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: object
    host: str = ""
    peer: tuple = ()


@dataclass
class Reply:
    """What the upstream answers: a JSON body, or a stream of events/lines.

    - `json`/`text`: a whole body with `status`. `text` goes as text/plain
      unless `headers` says otherwise: an HTML error page of a proxy is
      `Reply(text="<html>...", headers={"Content-Type": "text/html"})`.
      `body`: raw bytes instead (invalid UTF-8, say), as application/json
      unless `headers` says otherwise.
    - `sse`: dicts (sent as `data: {json}`) or raw strings, then `data: [DONE]`
      unless `done=False`. `ndjson`: dicts sent one per line. In both, a
      `bytes` item is sent as it is (invalid UTF-8, say), and a raw string
      too (`"data: {not json\n\n"`: malformed JSON in an event).
    - `cut_after`: close the connection after that many events, mid-stream;
      for a whole body, after that many bytes of it (its Content-Length
      promised more).
    - `reset`: make the `cut_after` cut a TCP reset (RST, SO_LINGER 0)
      instead of an orderly close (FIN).
    - `reset_before_headers`: read the request, then reset the connection
      (RST) without a byte of answer: a provider's load balancer dropping it.
    - `close`: after a whole answer, close the connection without having said
      so (no `Connection: close`): a provider's idle keep-alive timeout.
    - `hold`: after the events, keep the stream open (sending SSE comments)
      until the client goes away or `release` is set. For a whole body:
      send nothing until the client closes the connection (a remote still
      generating), or until `release` is set (then the body goes out).
    - `gate`: wait for this event before sending anything after the first event.
    - `delay`: seconds to wait before answering at all.
    - `stall`: seconds to wait, headers sent, before the event at index
      `stall_at` (0: before the first one).
    """

    status: int = 200
    json: object = None
    text: str = None
    body: bytes = None
    sse: list = None
    ndjson: list = None
    headers: dict = field(default_factory=dict)
    cut_after: int = None
    hold: bool = False
    gate: threading.Event = None
    done: bool = True
    delay: float = 0
    stall: float = 0
    stall_at: int = 0
    reset: bool = False
    reset_before_headers: bool = False
    close: bool = False


class FakeUpstream:
    def __init__(self, ssl_context=None):
        self.requests = []
        self.replies = []
        self.client_went_away = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                upstream._handle(self)

            do_POST = do_DELETE = do_PUT = do_GET

        class Server(ThreadingHTTPServer):
            # The default backlog of 5 drops connections under a burst.
            request_queue_size = 128

            def handle_error(self, request, client_address):
                # The relay hanging up (with an RST when it leaves a body
                # unread) is what many tests make it do: no traceback for it.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.port = self.server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def reset(self):
        with self._lock:
            self.replies.clear()
            self.requests.clear()
        self.client_went_away.clear()
        self.release.clear()

    def reply(self, *replies):
        with self._lock:
            self.replies.extend(replies)

    @property
    def last(self):
        return self.requests[-1]

    def _next_reply(self, recorded):
        """The next queued reply (a Reply, or a function of the request giving
        one), or the default one."""
        with self._lock:
            reply = self.replies.pop(0) if self.replies else default_reply
        return reply(recorded) if callable(reply) else reply

    def _handle(self, handler):
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        recorded = Recorded(
            handler.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in handler.headers.items()},
            body,
            host=parts.netloc,
            peer=handler.client_address,
        )
        self.requests.append(recorded)
        self._send(handler, self._next_reply(recorded))

    def _send(self, handler, reply):
        if reply.delay:
            time.sleep(reply.delay)
        if reply.reset_before_headers:
            _reset(handler)
            return
        if reply.sse is None and reply.ndjson is None:
            self._send_whole(handler, reply)
            return
        sse = reply.sse is not None
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "text/event-stream" if sse else "application/x-ndjson")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        items = reply.sse if sse else reply.ndjson
        frames = [_frame(item, sse) for item in items]
        if sse and reply.done and reply.cut_after is None and not reply.hold:
            frames.append(b"data: [DONE]\n\n")
        try:
            for index, frame in enumerate(frames):
                if reply.cut_after is not None and index == reply.cut_after:
                    # Abrupt end: no terminating chunk, the socket just closes.
                    _cut(handler, reply.reset)
                    return
                if reply.stall and index == reply.stall_at:
                    time.sleep(reply.stall)
                _write_chunk(handler, frame)
                if index == 0 and reply.gate is not None:
                    reply.gate.wait(30)
            if reply.hold:
                while not self.release.wait(0.05):
                    _write_chunk(handler, b": keep-alive\n\n")
            _write_chunk(handler, b"")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.client_went_away.set()
            handler.close_connection = True

    def _send_whole(self, handler, reply):
        if reply.hold and _wait_for_close(handler, self.release):
            self.client_went_away.set()
            handler.close_connection = True
            return
        if reply.body is not None:
            payload, content_type = reply.body, "application/json"
        elif reply.text is not None:
            payload, content_type = reply.text.encode(), "text/plain"
        else:
            payload, content_type = json.dumps(reply.json).encode(), "application/json"
        headers = dict(reply.headers)
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", headers.pop("Content-Type", content_type))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            if reply.cut_after is not None:
                handler.wfile.write(payload[: reply.cut_after])
                _cut(handler, reply.reset)
                return
            handler.wfile.write(payload)
            if reply.close:
                _cut(handler, reset=False)
        except OSError:
            # The relay hung up first (it gave up waiting, say): not this
            # server's failure, and no traceback on the test's stderr.
            self.client_went_away.set()
            handler.close_connection = True


def _wait_for_close(handler, release):
    """Whether the client closed the connection before `release` was set
    (a generous bound: 120 s)."""
    sock = handler.connection
    deadline = time.monotonic() + 120
    while not release.is_set() and time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            try:
                if not sock.recv(1, socket.MSG_PEEK):
                    return True
            except OSError:
                return True
            return False  # a next request, pipelined: the client is there
    return False


def _cut(handler, reset):
    handler.close_connection = True
    handler.wfile.flush()
    if reset:
        # Long enough for the relay to read what was sent: an RST can make
        # the peer's kernel drop data it has received but not yet handed on.
        time.sleep(0.1)
        _reset(handler)
    else:
        handler.connection.shutdown(2)


def _reset(handler):
    """Close the connection with an RST: SO_LINGER on with a zero timeout.
    The handler's read buffer holds a reference to the socket, which keeps
    it open past close(): it goes first."""
    handler.close_connection = True
    sock = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.rfile.close()
    sock.close()


def _frame(item, sse):
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    text = json.dumps(item)
    return f"data: {text}\n\n".encode() if sse else (text + "\n").encode()


def _write_chunk(handler, data):
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()


# --- Canned OpenAI Chat Completions payloads -------------------------------


def completion(
    content="Hello from upstream",
    model="remote-model",
    reasoning=None,
    reasoning_field="reasoning_content",
    tool_calls=None,
    finish_reason=None,
    usage=None,
):
    message = {"role": "assistant", "content": content}
    if reasoning is not None:
        message[reasoning_field] = reasoning
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for call_id, name, arguments in tool_calls
        ]
    return {
        "id": "chatcmpl-upstream1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": usage or {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def chunk(delta=None, finish_reason=None, model="remote-model", usage=None, choices=True):
    body = {
        "id": "chatcmpl-upstream1",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}
        ]
        if choices
        else [],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def text_stream(
    *pieces, reasoning=(), reasoning_field="reasoning_content", finish_reason="stop", usage=None
):
    """Chunks as a typical provider sends them: role, reasoning, text, finish, usage."""
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({reasoning_field: piece}) for piece in reasoning]
    chunks += [chunk({"content": piece}) for piece in pieces]
    chunks.append(chunk({}, finish_reason=finish_reason))
    chunks.append(
        chunk(
            choices=False,
            usage=usage or {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        )
    )
    return chunks


def default_reply(recorded):
    body = recorded.body if isinstance(recorded.body, dict) else {}
    if recorded.path.startswith("/api/"):
        return ollama_reply(recorded.path[len("/api/") :], body)
    if recorded.path.endswith("/chat/completions"):
        if body.get("stream"):
            return Reply(sse=text_stream("Hello", " from", " upstream"))
        return Reply(json=completion())
    if recorded.path.endswith("/embeddings"):
        inputs = body.get("input")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        return Reply(
            json={
                "object": "list",
                "model": body.get("model"),
                "data": [
                    {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                    for i in range(len(inputs))
                ],
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            }
        )
    return Reply(
        status=404,
        json={"error": {"message": f"no route {recorded.path}", "type": "invalid_request_error"}},
    )


# --- Canned Ollama-native payloads ------------------------------------------


def ollama_reply(endpoint, body):
    model = body.get("model")
    final = {
        "model": model,
        "created_at": "2026-01-01T00:00:00Z",
        "done": True,
        "done_reason": "stop",
        "total_duration": 1000,
        "prompt_eval_count": 5,
        "eval_count": 3,
    }
    if endpoint == "chat":
        parts = [
            {
                "model": model,
                "created_at": "2026-01-01T00:00:00Z",
                "done": False,
                "message": {"role": "assistant", "content": piece},
            }
            for piece in ("Hi", " from", " ollama")
        ]
        final["message"] = {"role": "assistant", "content": ""}
        if body.get("stream", True):
            return Reply(ndjson=parts + [final])
        return Reply(json=dict(final, message={"role": "assistant", "content": "Hi from ollama"}))
    if endpoint == "generate":
        if body.get("stream", True):
            return Reply(
                ndjson=[{"model": model, "response": "Hi", "done": False}, dict(final, response="")]
            )
        return Reply(json=dict(final, response="Hi from ollama"))
    if endpoint == "embed":
        inputs = body.get("input")
        count = len(inputs) if isinstance(inputs, list) else 1
        return Reply(json={"model": model, "embeddings": [[0.5, 0.25]] * count})
    if endpoint == "embeddings":
        return Reply(json={"embedding": [0.5, 0.25]})
    return Reply(status=404, json={"error": f"unknown endpoint {endpoint}"})
