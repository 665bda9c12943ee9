"""What the relay adds to a stream: time to first event and to the end, straight
to a fake upstream and through the relay (gunicorn, gevent), one at a time and
with many streams at once. Prints numbers; asserts nothing.

    .venv/bin/python ops/bench/stream_overhead.py [--requests 200] [--concurrency 50]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.fake_upstream import FakeUpstream, Reply, text_stream  # noqa: E402
from tests.servers import GunicornServer  # noqa: E402

CHAT = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def one_stream(url, path, model):
    started = time.perf_counter()
    with requests.post(url + path, json=dict(CHAT, model=model), stream=True, timeout=60) as r:
        lines = r.iter_lines()
        next(line for line in lines if line)
        first = time.perf_counter() - started
        for _ in lines:
            pass
    return first, time.perf_counter() - started


def run(label, url, path, model, count, concurrency):
    begun = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: one_stream(url, path, model), range(count)))
    wall = time.perf_counter() - begun
    firsts = sorted(r[0] * 1000 for r in results)
    totals = sorted(r[1] * 1000 for r in results)
    p95 = firsts[int(len(firsts) * 0.95) - 1]
    print(f"{label:<34} first event p50 {statistics.median(firsts):7.2f} ms  p95 {p95:7.2f} ms"
          f"  total p50 {statistics.median(totals):7.2f} ms  {count / wall:8.1f} streams/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()

    upstream = FakeUpstream()
    # Every request gets the same 20-chunk stream.
    upstream.reply = lambda *replies: None
    upstream._next_reply = lambda recorded: Reply(sse=text_stream(*(["tok "] * 20)))
    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    relay = GunicornServer({
        "RELAY_DATABASE_URL": f"sqlite:///{workdir}/relay.sqlite3",
        "RELAY_INSTANCE_PATH": str(workdir / "instance"),
        "RELAY_REMOTE_ALLOWLIST": "127.0.0.1", "RELAY_LOG_LEVEL": "WARNING",
    }, workdir, workers=os.cpu_count() or 2)
    try:
        requests.post(relay.url + "/api/create", json={
            "name": "bench", "from": "remote-model", "remote_type": "openai", "stream": False,
            "remote_host": upstream.url + "/v1"}).raise_for_status()
        for concurrency in (1, args.concurrency):
            count = args.requests if concurrency > 1 else min(args.requests, 50)
            run(f"direct to upstream (x{concurrency})", upstream.url, "/v1/chat/completions",
                "remote-model", count, concurrency)
            run(f"/v1/chat/completions relay (x{concurrency})", relay.url,
                "/v1/chat/completions", "bench", count, concurrency)
            run(f"/api/chat relay (x{concurrency})", relay.url, "/api/chat", "bench",
                count, concurrency)
    finally:
        relay.stop()
        upstream.close()


if __name__ == "__main__":
    main()
