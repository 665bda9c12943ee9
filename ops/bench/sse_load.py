"""A closed-loop HTTP/SSE load client: `--concurrency` keep-alive connections,
each sending the next request as soon as the last answer ended, for
`--duration` seconds (or exactly once each with --once). Per request it times
the first SSE event (the first body bytes holding `data:`) and the whole answer.

wrk measures only whole answers; this client exists for the first event and
for many concurrent long streams. It is asyncio over raw sockets and parses
HTTP/1.1 by hand (Content-Length or chunked), so one core drives far more
streams than a server under test serves; compare.py prints its CPU to prove it.

    python ops/bench/sse_load.py --url http://127.0.0.1:8000/v1/chat/completions \
        --body '{"model": "m", "stream": true, ...}' --key K --concurrency 16 --duration 5

Prints one JSON line: requests, ok, errors (by kind), per second, and p50/p99
of first event and total in milliseconds. An answer counts as ok when its
status is 200 and its body holds --end (default `[DONE]`): a stream cut short
is a drop, not a success.
"""

import argparse
import asyncio
import json
import time
from collections import Counter
from urllib.parse import urlsplit

perf = time.perf_counter


class Closed(Exception):
    pass


class Conn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None
        self.buf = b""

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.buf = b""

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def more(self):
        data = await self.reader.read(262144)
        if not data:
            raise Closed()
        self.buf += data
        return data

    async def until(self, marker):
        while True:
            index = self.buf.find(marker)
            if index >= 0:
                return index
            await self.more()

    async def request(self, payload, end_marker, started):
        """Send one request, read its whole answer; (first event s, ok, close)."""
        self.writer.write(payload)
        end = await self.until(b"\r\n\r\n")
        head, self.buf = self.buf[:end].decode("latin-1").lower(), self.buf[end + 4 :]
        status = head[9:12]
        chunked = "transfer-encoding: chunked" in head
        close = "connection: close" in head
        first, body = None, []
        if chunked:
            # Body bytes arrive in reads of any size: time the first event at
            # the read that brought it, then walk the chunk framing.
            while True:
                line = await self.until(b"\r\n")
                size = int(self.buf[:line].split(b";")[0], 16)
                while len(self.buf) < line + 2 + size + 2:
                    if first is None and b"data:" in self.buf:
                        first = perf() - started
                    await self.more()
                data = self.buf[line + 2 : line + 2 + size]
                self.buf = self.buf[line + 2 + size + 2 :]
                if size == 0:
                    break
                if first is None and b"data:" in data:
                    first = perf() - started
                body.append(data)
        else:
            length = 0
            for line in head.split("\r\n"):
                if line.startswith("content-length:"):
                    length = int(line.split(":")[1])
            while len(self.buf) < length:
                await self.more()
            body.append(self.buf[:length])
            self.buf = self.buf[length:]
        total = perf() - started
        whole = b"".join(body)
        ok = status == "200" and end_marker in whole
        return (first if first is not None else total), total, ok, close


async def worker(args, payload, deadline, measure_from, results, errors, sent):
    conn = Conn(args.host, args.port)
    runs = 0
    while True:
        if args.once and runs:
            break
        if not args.once and perf() >= deadline:
            break
        runs += 1
        sent[0] += 1
        started = perf()
        try:
            if conn.writer is None:
                await conn.open()
            first, total, ok, close = await asyncio.wait_for(
                conn.request(payload, args.end, started), args.timeout
            )
        except (Closed, ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
            errors[type(exc).__name__] += 1
            conn.close()
            continue
        except asyncio.TimeoutError:
            errors["timeout"] += 1
            conn.close()
            continue
        if close:
            conn.close()
        if started >= measure_from:
            results.append((first, total, ok))
    conn.close()


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * q))] * 1000, 3)


async def run(args):
    url = urlsplit(args.url)
    args.host, args.port = url.hostname, url.port or 80
    body = args.body.encode()
    payload = (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        + (f"Authorization: Bearer {args.key}\r\n" if args.key else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    results, errors, sent = [], Counter(), [0]
    begun = perf()
    # Answers that began in the warm-up are not counted: first connections
    # and the servers' own first-request work would skew short runs.
    measure_from = begun + (0 if args.once else args.warmup)
    deadline = measure_from + args.duration
    await asyncio.gather(
        *(
            worker(args, payload, deadline, measure_from, results, errors, sent)
            for _ in range(args.concurrency)
        )
    )
    elapsed = perf() - (begun if args.once else measure_from)
    firsts = [r[0] for r in results]
    totals = [r[1] for r in results]
    ok = sum(1 for r in results if r[2])
    return {
        "requests": len(results),
        "ok": ok,
        "sent": sent[0],
        "bad": len(results) - ok,
        "errors": dict(errors),
        "per_second": round(ok / elapsed, 1) if elapsed else 0,
        "first_p50": percentile(firsts, 0.5),
        "first_p99": percentile(firsts, 0.99),
        "total_p50": percentile(totals, 0.5),
        "total_p99": percentile(totals, 0.99),
        "elapsed": round(elapsed, 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="the JSON request body")
    parser.add_argument("--key", default="")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument(
        "--once",
        action="store_true",
        help="each connection sends one request (the slow-streams test)",
    )
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--end", default="[DONE]", help="what a complete answer holds")
    args = parser.parse_args()
    args.end = args.end.encode()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
