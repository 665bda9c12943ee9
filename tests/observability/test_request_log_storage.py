"""The request log's storage, on SQLite and PostgreSQL: retention pruned in
bounded batches (rows and captures each by their own age), a buffer that
keeps the newest rows when it is full and counts what it drops, and the
scrubbing of captured payloads."""

import datetime

from prometheus_client import REGISTRY

from app.observability import capture, request_log
from app.observability import request_queries as queries
from app.storage.models import RequestCapture, RequestLog, utcnow

NOW = datetime.datetime(2026, 12, 7, 12, 0, 0)


def row(when, **fields):
    return {
        "time": when,
        "request_id": fields.pop("request_id", "r"),
        "trace_id": None,
        "key_name": "k",
        "team": "-",
        "model": "m:latest",
        "remote_model": "remote",
        "surface": "openai",
        "route": "/v1/chat/completions",
        "stream": False,
        "status": 200,
        "error_code": None,
        "latency_ms": 10,
        "ttfb_ms": 10,
        "input_tokens": 1,
        "output_tokens": 1,
        "cost": None,
        "retries": 0,
        "fallback": None,
        "captured": False,
        **fields,
    }


def test_retention_prunes_in_bounded_batches_rows_and_captures_by_their_own_age(app):
    ages = [40, 35, 31, 29, 10, 8, 6, 1]  # days
    with app.app_context():
        for days in ages:
            when = NOW - datetime.timedelta(days=days)
            log_id = RequestLog.insert(**row(when, request_id=f"d{days}")).execute()
            RequestCapture.insert(log_id=log_id, time=when, request="{}", answer="{}").execute()

        # Two rows of each table at most per batch: the caller learns more is left.
        assert request_log.prune_batch(30, 7, batch=2, now=NOW) is True
        assert RequestLog.select().count() == len(ages) - 2
        assert RequestCapture.select().count() == len(ages) - 2
        request_log.prune(30, 7, batch=2, now=NOW)

        kept = sorted(int(r.request_id[1:]) for r in RequestLog.select())
        assert kept == [1, 6, 8, 10, 29]
        captured = sorted(
            (NOW - c.time).days for c in RequestCapture.select().order_by(RequestCapture.time)
        )
        assert captured == [1, 6]
        assert request_log.prune_batch(30, 7, batch=2, now=NOW) is False


def dropped(kind):
    return REGISTRY.get_sample_value("relay_request_log_dropped_total", {"kind": kind}) or 0


def test_a_full_buffer_keeps_the_newest_rows_and_counts_the_dropped(app):
    book = request_log.RequestLogBook(3, 30, 7)
    before = dropped("row")
    for number in range(5):
        book.add(row(utcnow(), request_id=f"n{number}"))
    assert dropped("row") - before == 2
    with app.app_context():
        book.flush()
        rows, following = queries.page({}, limit=10)
    assert [r["request_id"] for r in rows] == ["n4", "n3", "n2"]
    assert following is None


def test_a_captured_row_is_written_with_its_capture(app):
    book = request_log.RequestLogBook(10, 30, 7)
    book.add(row(utcnow(), request_id="plain"))
    book.add(row(utcnow(), request_id="kept"), {"request": "{}", "answer": "ok"})
    with app.app_context():
        book.flush()
        (kept_id,) = queries.ids_of("kept")
        shown = queries.one(kept_id)
        plain = queries.one(queries.ids_of("plain")[0])
    assert shown["captured"] is True and shown["capture"]["answer"] == "ok"
    assert plain["captured"] is False and plain["capture"] is None


def test_secrets_are_scrubbed_before_the_cut():
    remote = "dashscope-REMOTE-secret-77"
    body = (
        '{"api_key": "in-a-field", "headers": {"Authorization": "Bearer abc.DEF_1"}, '
        f'"note": "orl-{"x" * 43} and {remote} and sk-proj-AAAAAAAAAAAA", '
        '"password": "p\\"w"}'
    ).encode()
    text, size = capture.scrubbed(body, [remote], 10_000)
    assert size == len(body)
    for secret in ("in-a-field", "abc.DEF_1", "x" * 43, remote, "AAAAAAAAAAAA", 'p\\"w'):
        assert secret not in text
    assert '"api_key": "***"' in text and '"password": "***"' in text

    # Cut at the limit, never through a character, and never leaving a secret's head.
    cut, size = capture.scrubbed(("é" * 100 + remote).encode(), [remote], 199)
    assert cut == "é" * 99 and size == 200 + len(remote)
    head, _ = capture.scrubbed(("a" * 95 + remote).encode(), [remote], 100)
    assert head == "a" * 95 + "***"


def test_capture_modes():
    assert capture.mode_for("off", None) is None
    assert capture.mode_for("off", "errors") == "errors"
    assert capture.mode_for("all", "off") is None
    assert capture.keeps("all", 200, False, None)
    assert not capture.keeps("errors", 200, False, None)
    assert capture.keeps("errors", 200, False, "client_gone")
    assert capture.keeps("errors", 502, False, None)
    assert not capture.keeps(None, 502, False, None)


def test_a_batch_the_database_refuses_is_dropped_not_retried_forever(app):
    book = request_log.RequestLogBook(10, 30, 7)
    before = dropped("row")
    book.add(row(utcnow(), request_id=None))  # NOT NULL: refused
    with app.app_context():
        book.flush()
        assert dropped("row") - before == 1
        book.add(row(utcnow(), request_id="after"))
        book.flush()
        rows, _ = queries.page({}, limit=10)
    assert [r["request_id"] for r in rows] == ["after"]
