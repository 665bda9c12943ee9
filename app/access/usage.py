"""Usage per key, model and UTC day, counted in memory and written in batches.

A request adds to this worker's book when it ends (a stream when its last
chunk went out or the client left). A flusher writes the book every
FLUSH_SECONDS as one upsert per (key, model, day) row, adding to what other
workers and hosts wrote; a failed write keeps the counts for the next one.
The book is also written when the worker exits. So `usage` shows a request
within about FLUSH_SECONDS of its end.
"""

import datetime
import logging
import threading

from peewee import EXCLUDED, PeeweeException

from app.spend import money
from app.storage.db import database, write_transaction
from app.storage.models import ClientKey, DailyUsage, utcnow

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
_COUNTS = ("requests", "input_tokens", "output_tokens", "errors", "cost", "unpriced")


class UsageBook:
    def __init__(self):
        self._rows = {}  # (key, team, model, day) -> counts in _COUNTS' order
        self._last_used = {}  # key name -> naive UTC datetime

    def record(
        self, key_name, team, model, input_tokens, output_tokens, failed, cost=0, unpriced=False
    ):
        """One request; `cost` in pico-units, `unpriced` when its model had no price."""
        day = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        row = self._rows.setdefault((key_name, team, model, day), [0] * len(_COUNTS))
        row[0] += 1
        row[1] += input_tokens
        row[2] += output_tokens
        row[3] += 1 if failed else 0
        row[4] += cost
        row[5] += 1 if unpriced else 0

    def touch(self, key_name):
        """The key was just used (for `keys list`)."""
        self._last_used[key_name] = utcnow()

    def flush(self):
        rows, self._rows = self._rows, {}
        last_used, self._last_used = self._last_used, {}
        if not rows and not last_used:
            return
        try:
            with database.connection_context(), write_transaction():
                for (key_name, team, model, day), counts in rows.items():
                    _add(key_name, team, model, day, counts)
                for name, moment in last_used.items():
                    ClientKey.update(last_used_at=moment).where(ClientKey.name == name).execute()
        except PeeweeException as exc:
            log.warning("usage not written yet (kept for the next try): %s", exc.__class__.__name__)
            self._merge_back(rows, last_used)

    def _merge_back(self, rows, last_used):
        for key, counts in rows.items():
            row = self._rows.setdefault(key, [0] * len(_COUNTS))
            for i, value in enumerate(counts):
                row[i] += value
        for name, moment in last_used.items():
            self._last_used.setdefault(name, moment)


def _add(key_name, team, model, day, counts):
    values = dict(zip(_COUNTS, counts))
    (
        DailyUsage.insert(key_name=key_name, team=team, model=model, day=day, **values)
        .on_conflict(
            conflict_target=[
                DailyUsage.key_name,
                DailyUsage.model,
                DailyUsage.day,
                DailyUsage.team,
            ],
            update={
                getattr(DailyUsage, name): getattr(DailyUsage, name) + getattr(EXCLUDED, name)
                for name in _COUNTS
            },
        )
        .execute()
    )


def rows(since=None, key=None, currency="USD", team=None):
    """Usage rows, oldest day first, as the CLI and /api/usage give them; `cost`
    is the exact amount as text, `unpriced` says some requests had no price."""
    query = DailyUsage.select().order_by(
        DailyUsage.day, DailyUsage.key_name, DailyUsage.team, DailyUsage.model
    )
    if since:
        query = query.where(DailyUsage.day >= since)
    if key:
        query = query.where(DailyUsage.key_name == key)
    if team:
        query = query.where(DailyUsage.team == team)
    return [
        {
            "key": row.key_name,
            "team": row.team,
            "model": row.model,
            "day": row.day,
            "requests": row.requests,
            "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens,
            "errors": row.errors,
            "cost": money.exact(row.cost),
            "currency": currency,
            "unpriced": row.unpriced > 0,
        }
        for row in query
    ]


# What a usage row is about, and what `grouped` can sum it by.
KEY_COLUMNS = ("day", "key", "team", "model")
GROUPS = ("key", "team", "model", "day")


def grouped(rows, by):
    """`rows` summed into one row per value of `by` (key, team, model or day),
    ordered by it: a charge-back report."""
    totals = {}
    for row in rows:
        total = totals.setdefault(
            row[by],
            {
                by: row[by],
                "requests": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "errors": 0,
                "cost": 0,
                "currency": row["currency"],
                "unpriced": False,
            },
        )
        for name in ("requests", "input_tokens", "output_tokens", "errors"):
            total[name] += row[name]
        total["cost"] += money.to_pico(row["cost"])
        total["unpriced"] = total["unpriced"] or row["unpriced"]
    return [dict(t, cost=money.exact(t["cost"])) for _, t in sorted(totals.items())]


class Flusher:
    """Calls `flush` every `interval` seconds from a daemon thread (a greenlet
    under gevent), started on first use, until `flush` returns False."""

    def __init__(self, flush, interval=FLUSH_SECONDS):
        self._flush = flush
        self._interval = interval
        self._thread = None
        self._lock = threading.Lock()

    def ensure_running(self):
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="relay-flusher", daemon=True)
                self._thread.start()

    def _run(self):
        stop = threading.Event()
        while not stop.wait(self._interval):
            try:
                if self._flush() is False:
                    return
            except Exception:
                log.exception("periodic flush failed")
