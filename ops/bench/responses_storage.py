"""What a long previous_response_id conversation costs the database: one
conversation of 500 turns (2 KB of input each) through the relay (gunicorn,
gevent) and a fake upstream, on SQLite and, with RELAY_BENCH_POSTGRES_URL,
PostgreSQL. Prints the bytes the stored responses take against the bytes of
the conversation itself, and the time per turn early, midway and late, next
to the same turn not stored and to the whole conversation sent by the client
(every turn sends the whole conversation upstream, whoever keeps it: that
part of a turn grows with the conversation in any design). Prints numbers;
asserts nothing.

    .venv/bin/python ops/bench/responses_storage.py [--turns 500] [--input-bytes 2048]
    RELAY_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python ...
"""

import argparse
import os
import random
import sqlite3
import statistics
import string
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.fake_upstream import FakeUpstream, Reply, completion  # noqa: E402
from tests.support.servers import GunicornServer  # noqa: E402

CHECKPOINTS = (50, 100, 200, 500)
TABLES = ("stored_response", "response_item")


class SqliteSize:
    def __init__(self, path):
        self.path = path

    def __call__(self):
        # Pages in use, WAL included (a reader sees committed WAL pages).
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        return (pages - free) * size

    def close(self):
        pass


class PostgresSize:
    """A fresh schema for the relay, measured with pg_total_relation_size
    (table, indexes and TOAST)."""

    def __init__(self, url):
        import psycopg

        self.schema = "relay_bench_" + uuid.uuid4().hex[:12]
        self.admin = psycopg.connect(url, autocommit=True)
        self.admin.execute(f"CREATE SCHEMA {self.schema}")
        sep = "&" if "?" in url else "?"
        self.url = f"{url}{sep}options={quote('-csearch_path=' + self.schema)}"

    def __call__(self):
        return sum(
            self.admin.execute(
                "SELECT pg_total_relation_size(%s)", (f"{self.schema}.{table}",)
            ).fetchone()[0]
            for table in TABLES
        )

    def close(self):
        self.admin.execute(f"DROP SCHEMA {self.schema} CASCADE")
        self.admin.close()


def text(size, rng):
    words = []
    while sum(len(w) + 1 for w in words) < size:
        words.append("".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))))
    return " ".join(words)[:size]


def timed(session, url, body, samples=1):
    """Median ms of `samples` posts of `body`, and the last answer."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = session.post(url, json=body, timeout=120)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return statistics.median(times), response.json()


def storage_ms(settings, ids, ends, input_bytes, rng):
    """The database's part of a turn at each of `ends`, in this process with
    the relay's own code: reading the conversation back (grows with it, as
    the request sent upstream does) and storing one more turn (should not)."""
    from app import create_app
    from app.surfaces.responses import store as responses_store
    from app.surfaces.responses.items import resource_items

    app = create_app(dict(settings, RELAY_AUTO_MIGRATE=False))
    out = {}
    with app.app_context():
        for end in ends:
            reads, writes = [], []
            for sample in range(5):
                started = time.perf_counter()
                history = responses_store.history(ids[end - 1])
                reads.append((time.perf_counter() - started) * 1000)
                prompt, answer = text(input_bytes, rng), "ok"
                output = [
                    {
                        "id": f"msg_bench_{end}_{sample}",
                        "type": "message",
                        "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": answer}],
                    }
                ]
                started = time.perf_counter()
                # A fork of turn `end`: the chain measured stays as it was.
                responses_store.save(
                    f"resp_bench_{end}_{sample}",
                    "bench:latest",
                    ids[end - 1],
                    resource_items(prompt),
                    history,
                    [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                    {"id": f"resp_bench_{end}_{sample}", "output": output},
                    "-",
                )
                writes.append((time.perf_counter() - started) * 1000)
            out[end] = statistics.median(reads), statistics.median(writes)
    return out


def run(label, database_url, measure, turns, input_bytes, output_bytes):
    rng = random.Random(1)
    upstream = FakeUpstream()
    answers = {}
    # Every chat request gets an answer of output_bytes; the record of what
    # the fake received is dropped each turn (at turn 500 each is a megabyte).
    upstream._next_reply = lambda recorded: Reply(json=completion(answers["next"]))
    # Its headers and body go out in separate writes: without TCP_NODELAY
    # every turn waits ~40 ms for a delayed ACK, which hides everything else.
    upstream.server.RequestHandlerClass.disable_nagle_algorithm = True
    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    settings = {
        "RELAY_DATABASE_URL": database_url,
        "RELAY_INSTANCE_PATH": str(workdir / "instance"),
        "RELAY_REMOTE_ALLOWLIST": "127.0.0.1",
        "RELAY_LOG_LEVEL": "WARNING",
    }
    relay = GunicornServer(settings, workdir, workers=2)
    url = relay.url + "/v1/responses"
    windows = [(1, 10), (turns // 2 - 10, turns // 2), (turns - 10, turns)]
    session = requests.Session()
    try:
        session.post(
            relay.url + "/api/create",
            json={
                "name": "bench",
                "from": "remote-model",
                "remote_type": "openai",
                "stream": False,
                "remote_host": upstream.url + "/v1",
            },
        ).raise_for_status()
        baseline = measure()
        previous, content, times, sizes, conversation, refs, ids = None, 0, [], {}, [], {}, []
        for n in range(1, turns + 1):
            prompt, answers["next"] = text(input_bytes, rng), text(output_bytes, rng)
            body = {"model": "bench", "input": prompt}
            if previous:
                body["previous_response_id"] = previous
            if n in (end for _, end in windows):
                # The same turn not stored (reads the chain, writes nothing),
                # and sent whole by the client (no stored response at all).
                whole = conversation + [{"role": "user", "content": prompt}]
                refs[n] = (
                    timed(session, url, dict(body, store=False), 5)[0],
                    timed(session, url, {"model": "bench", "input": whole, "store": False}, 5)[0],
                )
            elapsed, answer = timed(session, url, body)
            times.append(elapsed)
            previous = answer["id"]
            ids.append(previous)
            upstream.requests.clear()
            content += len(prompt) + len(answers["next"])
            conversation += [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": answers["next"]},
            ]
            if n in CHECKPOINTS or n == turns:
                sizes[n] = (measure() - baseline, content)
    finally:
        relay.stop()
        upstream.close()
    database_part = storage_ms(settings, ids, [end for _, end in windows], input_bytes, rng)
    print(f"\n{label}: {turns} turns, {input_bytes} B input + {output_bytes} B output each")
    print(f"{'turns':>6} {'database':>12} {'content':>12} {'ratio':>7}")
    for n, (stored, content) in sizes.items():
        print(f"{n:>6} {stored / 1e6:>9.2f} MB {content / 1e6:>9.2f} MB {stored / content:>6.2f}x")
    print(
        "ms per turn (median): stored turn | same turn, store:false | whole conversation "
        "sent by the client, store:false"
    )
    for start, end in windows:
        window = times[max(start, 1) - 1 : end]
        unstored, stateless = refs[end]
        print(
            f"  turns {start:>3}-{end:<3} {statistics.median(window):7.1f} | {unstored:7.1f}"
            f" | {stateless:7.1f}   (conversation {end * (input_bytes + output_bytes) / 1e6:.2f}"
            f" MB, sent upstream each turn)"
        )
    print(
        "the database's part of a turn (ms, median): reading the conversation back | "
        "storing the turn"
    )
    for start, end in windows:
        read, write = database_part[end]
        print(f"  at turn {end:<3}    {read:7.2f} | {write:7.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--input-bytes", type=int, default=2048)
    parser.add_argument("--output-bytes", type=int, default=256)
    args = parser.parse_args()
    sizes = (args.turns, args.input_bytes, args.output_bytes)

    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-db-"))
    path = workdir / "relay.sqlite3"
    run("SQLite", f"sqlite:///{path}", SqliteSize(path), *sizes)
    postgres = os.environ.get("RELAY_BENCH_POSTGRES_URL")
    if postgres:
        measure = PostgresSize(postgres)
        try:
            run("PostgreSQL", measure.url, measure, *sizes)
        finally:
            measure.close()


if __name__ == "__main__":
    main()
