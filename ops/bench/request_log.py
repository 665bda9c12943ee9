"""The request log at 10 million rows on PostgreSQL: each filter's first page.

Makes a schema of its own (dropped at the end), migrates it as the relay
does, fills `request_log` with generate_series (the indexes dropped during
the fill and made again after, as a bulk load would), ANALYZEs it, then
times the relay's own query code (app/observability/request_queries.py) for
each filter's first page of 50, the best of a few runs after a warm one.
Prints a table and the plan's top node for each; exits 1 if a page took
100 ms or more. Rows spread over 30 days, 200 keys in 20 teams, 30 models,
statuses as a busy gateway sees them (about 1% 5xx, 2% 429), latencies
log-normal around a second.

    .venv/bin/python ops/bench/request_log.py [--rows 10000000]
    RELAY_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test ...
"""

import argparse
import datetime
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import psycopg  # noqa: E402

from app import create_app  # noqa: E402
from app.observability import request_queries as queries  # noqa: E402
from app.storage.db import database  # noqa: E402

TARGET_MS = 100
RUNS = 5

FILL = """
INSERT INTO request_log (time, request_id, trace_id, key_name, team, model, remote_model,
    surface, route, stream, status, error_code, latency_ms, ttfb_ms, input_tokens,
    output_tokens, cost, retries, fallback, captured)
SELECT
    %(start)s::timestamp + (i * %(step)s) * interval '1 millisecond',
    md5(i::text),
    NULL,
    'key-' || (h %% 200),
    'team-' || (h %% 200 / 10),
    'model-' || (h / 200 %% 30) || ':latest',
    'remote-' || (h / 200 %% 30),
    (ARRAY['ollama', 'openai', 'responses', 'anthropic'])[1 + h %% 4],
    '/v1/chat/completions',
    h %% 3 = 0,
    CASE WHEN r < 0.010 THEN 502 WHEN r < 0.013 THEN 504 WHEN r < 0.033 THEN 429
         WHEN r < 0.040 THEN 400 ELSE 200 END,
    CASE WHEN r < 0.040 THEN 'error' END,
    least(2000000000, (1000 * exp(1.2 * z))::int),
    (300 * exp(z))::int,
    200 + h %% 4000,
    50 + h %% 800,
    (h %% 5000) * 1000000::bigint,
    CASE WHEN r < 0.02 THEN 1 ELSE 0 END,
    NULL,
    false
FROM (
    SELECT i, abs(hashtext(i::text)::bigint) AS h, random() AS r,
           sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random()) AS z
    FROM generate_series(%(first)s, %(last)s) AS i
) AS g
"""


def _timed(filters, limit=50):
    best = None
    queries.page(filters, limit)  # warm: the plan and the pages in memory
    for _ in range(RUNS):
        started = time.perf_counter()
        rows, _ = queries.page(filters, limit)
        took = (time.perf_counter() - started) * 1000
        best = took if best is None else min(best, took)
    return best, len(rows)


def _plan(conn, filters):
    query, params = _sql(filters)
    plan = conn.execute("EXPLAIN " + query, params).fetchall()
    return " / ".join(line[0].strip().lstrip("-> ").split("  ")[0] for line in plan[:3])[:90]


def _sql(filters):
    # The statement page() runs, for EXPLAIN.
    from app.storage.models import RequestLog  # noqa: F401

    captured = {}
    original = database.obj.execute_sql

    def keep(sql, params=None, *args, **kwargs):
        captured["sql"], captured["params"] = sql, params
        return original(sql, params, *args, **kwargs)

    database.obj.execute_sql = keep
    try:
        queries.page(filters)
    finally:
        database.obj.execute_sql = original
    return captured["sql"], captured["params"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    base = os.environ.get("RELAY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = "reqlog_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    url = f"{base}?options={quote('-csearch_path=' + schema)}"
    try:
        run(url, schema, args.rows)
    finally:
        database.close() if not database.is_closed() else None
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
        print(f"dropped schema {schema}")


def run(url, schema, rows):
    instance = f"/tmp/{schema}"
    app = create_app({"RELAY_DATABASE_URL": url, "RELAY_INSTANCE_PATH": instance})
    end = datetime.datetime(2026, 12, 7)
    start = end - datetime.timedelta(days=30)
    step = 30 * 86400 * 1000 / rows
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND "
            "tablename = 'request_log' AND indexname <> 'request_log_pkey'",
            (schema,),
        ).fetchall()
        conn.execute("SET maintenance_work_mem = '256MB'")
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        began = time.perf_counter()
        chunk = 1_000_000
        for first in range(0, rows, chunk):
            last = min(rows, first + chunk) - 1
            conn.execute(FILL, {"start": start, "step": step, "first": first, "last": last})
            print(f"  filled {last + 1:>10,} rows", file=sys.stderr)
        filled = time.perf_counter() - began
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("ANALYZE request_log")
        built = time.perf_counter() - began - filled
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('request_log'))")
        print(
            f"{rows:,} rows in {filled:.0f} s, indexes in {built:.0f} s, "
            f"table and indexes: {size.fetchone()[0]}"
        )
        with app.app_context():
            middle = queries.page({"until": start + datetime.timedelta(days=15)}, 1)[1]
            cases = [
                ("newest page, no filter", {}),
                ("--since 1d", {"since": end - datetime.timedelta(days=1)}),
                (
                    "--since/--until a day 2 weeks ago",
                    {
                        "since": start + datetime.timedelta(days=14),
                        "until": start + datetime.timedelta(days=15),
                    },
                ),
                ("--key key-17", {"key": "key-17"}),
                ("--team team-3", {"team": "team-3"}),
                ("--model model-5", {"model": "model-5:latest"}),
                ("--status 5xx", {"status": (500, 599)}),
                ("--status 429", {"status": (429, 429)}),
                ("--status 504", {"status": (504, 504)}),
                ("--slower-than 2s", {"slower_than": 2000}),
                ("--slower-than 30s", {"slower_than": 30000}),
                ("--key key-17 --status 5xx", {"key": "key-17", "status": (500, 599)}),
                ("--team team-3 --slower-than 10s", {"team": "team-3", "slower_than": 10000}),
                ("cursor: page from the middle", {"cursor": queries.decode_cursor(middle)}),
                (
                    "cursor + --key key-17",
                    {"cursor": queries.decode_cursor(middle), "key": "key-17"},
                ),
            ]
            print(f"\n{'filter':<36} {'first page, ms':>15} {'rows':>5}  plan")
            slow = []
            for label, filters in cases:
                took, found = _timed(filters)
                plan = _plan(conn, filters)
                print(f"{label:<36} {took:>15.1f} {found:>5}  {plan}")
                if took >= TARGET_MS:
                    slow.append(label)
    if slow:
        print(f"\nover {TARGET_MS} ms: {', '.join(slow)}")
        sys.exit(1)
    print(f"\nevery filter's first page under {TARGET_MS} ms")


if __name__ == "__main__":
    main()
