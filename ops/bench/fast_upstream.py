"""A fast fake OpenAI Chat Completions upstream for benchmarks: stdlib asyncio
with raw protocol handling (no HTTP framework), keep-alive, canned answers.

tests/support/fake_upstream.py is a thread per connection and records every request:
right for tests, but it would be the bottleneck of a benchmark. This one
answers from bytes built once at start, so a few thousand requests a second
cost it a small part of a core (compare.py measures its CPU to show it).

    python ops/bench/fast_upstream.py [--port 0] [--chunks 20] [--interval 0]

- POST .../chat/completions: a completion, or with "stream": true a stream of
  `--chunks` content chunks, a finish chunk, a usage chunk and [DONE], each
  event in its own HTTP chunk (the framing real providers use).
- `--interval S`: sleep S seconds between stream events (the slow-streams test).
- GET /stats: requests counted by path (and stream or not), to check which
  path a proxy really called, and connections accepted; any other path is a
  404, counted too.
Prints `listening PORT` on stdout once it accepts connections.
"""

import argparse
import asyncio
import json
import time
from collections import Counter

MODEL = "fast-model"
USAGE = {"prompt_tokens": 11, "completion_tokens": 20, "total_tokens": 31}


def _completion():
    return json.dumps(
        {
            "id": "chatcmpl-fast",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL,
            "usage": USAGE,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": "tok " * 20},
                }
            ],
        }
    ).encode()


def _events(chunks):
    def event(delta, finish=None, usage=None, choices=True):
        body = {
            "id": "chatcmpl-fast",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            if choices
            else [],
        }
        if usage:
            body["usage"] = usage
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    events = [event({"role": "assistant", "content": "tok "})]
    events += [event({"content": "tok "}) for _ in range(chunks - 1)]
    events += [event({}, finish="stop"), event({}, usage=USAGE, choices=False), b"data: [DONE]\n\n"]
    return events


def _chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def _head(status, content_type, length=None):
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{framing}\r\n"
        f"Connection: keep-alive\r\n\r\n"
    ).encode()


class Upstream:
    def __init__(self, chunks, interval):
        self.interval = interval
        body = _completion()
        self.whole = _head("200 OK", "application/json", len(body)) + body
        self.events = [_chunk(e) for e in _events(chunks)]
        self.stream_head = _head("200 OK", "text/event-stream")
        # A fast stream goes out in one write: the upstream's own cost stays
        # out of the measurement; the relay still parses every event.
        self.stream = self.stream_head + b"".join(self.events) + b"0\r\n\r\n"
        self.counts = Counter()


class Connection(asyncio.Protocol):
    def __init__(self, upstream):
        self.up = upstream
        self.buffer = b""
        self.transport = None
        self.busy = False  # a slow stream is being written: later requests wait

    def connection_made(self, transport):
        self.transport = transport
        # Against the requests: a proxy that does not reuse its connections
        # to the upstream pays a connect (and a lookup) per request.
        self.up.counts["connections"] += 1

    def data_received(self, data):
        self.buffer += data
        while not self.busy and self.transport is not None:
            request = self._take_request()
            if request is None:
                return
            self._answer(*request)

    def connection_lost(self, exc):
        self.transport = None

    def _take_request(self):
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buffer[:end].decode("latin-1")
        lines = head.split("\r\n")
        method, path = lines[0].split(" ")[:2]
        length, chunked = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        rest = self.buffer[end + 4 :]
        if chunked:  # rare (no client here sends it), so simple rather than fast
            body, used = _dechunk(rest)
            if body is None:
                return None
            self.buffer = rest[used:]
        else:
            if len(rest) < length:
                return None
            body, self.buffer = rest[:length], rest[length:]
        return method, path.split("?")[0], body

    def _answer(self, method, path, body):
        up = self.up
        if method == "GET" and path == "/stats":
            payload = json.dumps(dict(up.counts)).encode()
            self.transport.write(_head("200 OK", "application/json", len(payload)) + payload)
            return
        if method == "POST" and path.endswith("/chat/completions"):
            # A substring test, not json.loads: no client of the benchmark
            # sends "stream" anywhere but as the request's own field.
            stream = b'"stream":true' in body.replace(b" ", b"")
            up.counts[f"POST {path} stream={stream}"] += 1
            if not stream:
                self.transport.write(up.whole)
            elif not up.interval:
                self.transport.write(up.stream)
            else:
                self.busy = True
                asyncio.ensure_future(self._slow_stream())
            return
        up.counts[f"{method} {path} (404)"] += 1
        payload = json.dumps(
            {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}
        ).encode()
        self.transport.write(_head("404 Not Found", "application/json", len(payload)) + payload)

    async def _slow_stream(self):
        self.transport.write(self.up.stream_head)
        for event in self.up.events:
            await asyncio.sleep(self.up.interval)
            if self.transport is None:
                return
            self.transport.write(event)
        self.transport.write(b"0\r\n\r\n")
        self.busy = False
        if self.buffer:
            self.data_received(b"")


def _dechunk(data):
    body, position = b"", 0
    while True:
        end = data.find(b"\r\n", position)
        if end < 0:
            return None, 0
        size = int(data[position:end].split(b";")[0], 16)
        start = end + 2
        if len(data) < start + size + 2:
            return None, 0
        body += data[start : start + size]
        position = start + size + 2
        if size == 0:
            return body, position


async def serve(port, chunks, interval):
    upstream = Upstream(chunks, interval)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Connection(upstream), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.chunks, args.interval))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
