"""The request log: one row per request that named a model, written in batches.

A request adds its row to this worker's buffer when it has really ended (a
stream when its last item went out, or the client left); the usage flusher
(app/access/usage.py's Flusher, every second) writes the buffer in a few
multi-row INSERTs, so no request waits on the database. The buffer holds at
most RELAY_REQUEST_LOG_BUFFER rows: while the database is down it keeps the
newest and drops the oldest, counted in relay_request_log_dropped_total (a
request never waits for the log). Captured payloads (app/observability/
capture.py) go with their row; at most MAX_PENDING_CAPTURES wait at once.

The same flush prunes: rows older than RELAY_REQUEST_LOG_DAYS and captures
older than RELAY_CAPTURE_DAYS go PRUNE_BATCH at a time, oldest first, one
batch per flush while there is more, then again PRUNE_SECONDS later. On
PostgreSQL one worker of all hosts prunes at a time (an advisory lock).
"""

import collections
import datetime
import logging
import random
import time
import zlib

from peewee import DataError, IntegrityError, PeeweeException, PostgresqlDatabase

from app.access import audit
from app.catalog.names import normalize_model_name
from app.observability import capture, metrics
from app.storage.db import database, write_transaction
from app.storage.models import RequestCapture, RequestLog, utcnow

log = logging.getLogger(__name__)

INSERT_ROWS = 500  # rows per INSERT statement (within SQLite's variable limit)
MAX_PENDING_CAPTURES = 256
PRUNE_BATCH = 5000
PRUNE_SECONDS = 300.0
_PG_PRUNE_LOCK = zlib.crc32(b"ollama-relay request log prune")


def surface_of(path):
    if path.startswith("/api/"):
        return "ollama"
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1/responses"):
        return "responses"
    return "openai"


def row_of(exchange, now=None):
    """The log row of a finished Exchange, or None for a request that named
    no model (management, or refused before its body was read)."""
    if not exchange.calls_model:
        return None
    # The model the client asked for (a fallback that served is `fallback`).
    model = exchange.asked_model or exchange.model
    if not model:
        return None
    now = time.monotonic() if now is None else now
    latency = now - exchange.started
    if exchange.stream:
        first = exchange.first_byte
        ttfb = None if first is None else round((first - exchange.started) * 1000)
    else:
        ttfb = round(latency * 1000)
    usage = exchange.usage
    status = exchange.status or 0
    return {
        "time": datetime.datetime.fromtimestamp(exchange.wall_started, datetime.UTC).replace(
            tzinfo=None
        ),
        "request_id": exchange.request_id,
        "trace_id": exchange.trace_ids()[0],
        "key_name": exchange.key,
        "team": exchange.team,
        "model": (normalize_model_name(model) or model.replace("\x00", ""))[:255],
        "remote_model": exchange.remote_model,
        "surface": surface_of(exchange.path),
        "route": exchange.route[:64],
        "stream": exchange.stream,
        "status": status,
        "error_code": exchange.error_code or ("stream_failed" if exchange.failed else None),
        "latency_ms": round(latency * 1000),
        "ttfb_ms": ttfb,
        "input_tokens": None if usage is None else usage.get("prompt_tokens"),
        "output_tokens": None if usage is None else usage.get("completion_tokens"),
        "cost": exchange.cost if exchange.price is not None else None,
        "retries": max(0, exchange.attempts - exchange.models_called),
        "fallback": exchange.fallback,
        "captured": False,
    }


def capture_of(exchange, row, limit):
    """The captured bodies of `exchange` (its row says whether it failed), or None."""
    if not capture.keeps(exchange.capture, row["status"], exchange.failed, row["error_code"]):
        return None
    request, request_bytes = capture.scrubbed(exchange.raw_body, exchange.secrets, limit)
    answer, answer_bytes = capture.scrubbed(exchange.answer, exchange.secrets, limit)
    return {
        "request": request,
        "answer": answer,
        "request_bytes": request_bytes,
        "answer_bytes": answer_bytes,
    }


class RequestLogBook:
    def __init__(self, limit, log_days, capture_days):
        self._pending = collections.deque()
        self._limit = limit
        self._captures = 0
        self._log_days, self._capture_days = log_days, capture_days
        # Workers started together spread their first prune.
        self._prune_at = time.monotonic() + random.uniform(1, 30)

    def add(self, row, captured=None):
        if captured is not None:
            if self._captures >= MAX_PENDING_CAPTURES:
                metrics.child(metrics.REQUEST_LOG_DROPPED, "capture").inc()
                captured = None
            else:
                self._captures += 1
                row["captured"] = True
        if len(self._pending) >= self._limit:
            self._drop_oldest()
        self._pending.append((row, captured))

    def _drop_oldest(self):
        _, dropped = self._pending.popleft()
        if dropped is not None:
            self._captures -= 1
        metrics.child(metrics.REQUEST_LOG_DROPPED, "row").inc()

    def flush(self):
        """Write what is buffered; then prune, when due. Safe beside add()
        (popleft and append on a deque are atomic)."""
        batch = []
        while self._pending and len(batch) < self._limit:
            batch.append(self._pending.popleft())
        if batch:
            self._write(batch)
        self._prune_when_due()

    def _write(self, batch):
        try:
            with database.connection_context(), write_transaction():
                plain = [row for row, captured in batch if captured is None]
                for start in range(0, len(plain), INSERT_ROWS):
                    RequestLog.insert_many(plain[start : start + INSERT_ROWS]).execute()
                for row, captured in batch:
                    if captured is not None:
                        log_id = RequestLog.insert(**row).execute()
                        RequestCapture.insert(log_id=log_id, time=row["time"], **captured).execute()
        except (DataError, IntegrityError) as exc:
            # A row the database refuses would be refused again on every try.
            log.error("request log batch refused, dropped: %s", exc.__class__.__name__)
            for _ in batch:
                metrics.child(metrics.REQUEST_LOG_DROPPED, "row").inc()
            self._captures -= sum(1 for _, captured in batch if captured is not None)
            return
        except PeeweeException as exc:
            log.warning(
                "request log not written yet (kept for the next try): %s", exc.__class__.__name__
            )
            # Back in front, in order; past the limit the oldest go.
            self._pending.extendleft(reversed(batch))
            while len(self._pending) > self._limit:
                self._drop_oldest()
            return
        self._captures -= sum(1 for _, captured in batch if captured is not None)

    def _prune_when_due(self):
        now = time.monotonic()
        if now < self._prune_at:
            return
        try:
            more = prune_batch(self._log_days, self._capture_days)
        except PeeweeException as exc:
            log.warning("request log not pruned (tried again later): %s", exc.__class__.__name__)
            more = False
        # A full batch: more is left, and the next flush takes the next batch.
        self._prune_at = now if more else now + PRUNE_SECONDS * random.uniform(0.75, 1.25)


def _delete_older(model, time_column, id_column, cutoff, batch):
    oldest = model.select(id_column).where(time_column < cutoff).order_by(time_column).limit(batch)
    return model.delete().where(id_column.in_(oldest)).execute()


def prune_batch(log_days, capture_days, batch=PRUNE_BATCH, now=None):
    """Delete at most `batch` expired rows of each table; True when a table
    had that many (more may be left)."""
    now = now or utcnow()
    with database.connection_context(), write_transaction():
        if isinstance(database.obj, PostgresqlDatabase):
            cursor = database.execute_sql("SELECT pg_try_advisory_xact_lock(%s)", (_PG_PRUNE_LOCK,))
            if not cursor.fetchone()[0]:
                return False  # another worker prunes now
        rows = _delete_older(
            RequestLog,
            RequestLog.time,
            RequestLog.id,
            now - datetime.timedelta(days=log_days),
            batch,
        )
        captures = _delete_older(
            RequestCapture,
            RequestCapture.time,
            RequestCapture.log_id,
            now - datetime.timedelta(days=capture_days),
            batch,
        )
    return rows >= batch or captures >= batch


def prune(log_days, capture_days, batch=PRUNE_BATCH, now=None):
    """Prune until nothing expired is left (the CLI); the rows deleted are not counted."""
    while prune_batch(log_days, capture_days, batch, now):
        pass


def init_app(app):
    """Log every finished request that named a model (after access has
    costed it), and write the log with the usage flusher."""
    settings = app.config
    default = capture.mode_for(settings["RELAY_CAPTURE"], None)
    app.extensions["relay.capture_default"] = default
    if default:
        # The deployment's setting changes only with a restart: each start
        # with capture on says so in the audit trail.
        audit.record("config", "capture.deployment", "RELAY_CAPTURE", capture=default)
    if not settings["RELAY_REQUEST_LOG"]:
        return
    book = RequestLogBook(
        settings["RELAY_REQUEST_LOG_BUFFER"],
        settings["RELAY_REQUEST_LOG_DAYS"],
        settings["RELAY_CAPTURE_DAYS"],
    )
    limit = settings["RELAY_CAPTURE_MAX_BYTES"]
    app.extensions["relay.request_log"] = book
    app.extensions.setdefault("relay.flushes", []).append(book.flush)

    def record(exchange):
        row = row_of(exchange)
        if row is not None:
            book.add(row, capture_of(exchange, row, limit) if exchange.capture else None)

    app.extensions.setdefault("relay.finish_hooks", []).append(record)
