"""Per-key rate limits (rpm, tpm) that hold across workers and hosts.

Each limit is a token bucket in the database (RateBucket): full at the limit,
refilled at limit/60 per second. A bucket has no minute boundary, so a burst
at :59 and another at :00 cannot pass twice the limit.

- Requests: a worker takes tokens from the shared bucket in leases (one, or
  a tenth of a second's worth for high limits) and spends them from memory.
  A lease unspent after LEASE_SECONDS is dropped, so no worker sits on
  tokens. When the bucket is empty, the worker knows when the next token
  comes and refuses from memory until then. So the database sees at most
  one statement per lease, never one per request of a busy key, and every
  admitted request had a token of the one shared bucket.
- Tokens: a request's tokens are known only when it ends. A worker admits
  while the shared level (read at most SYNC_SECONDS ago, less what it used
  since) is above zero, and writes what its requests used in batches. The
  level can go below zero; the key then waits until it refills.

Times are Unix seconds from each host's clock: hosts sharing a database
must keep their clocks in sync (NTP), as they must for TLS anyway.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass, field

from peewee import PeeweeException, PostgresqlDatabase

from app.errors import RateLimited
from app.storage.db import commit_without_waiting_for_disk, database, write_transaction
from app.storage.models import RateBucket

log = logging.getLogger(__name__)

LEASE_SECONDS = 1.0
SYNC_SECONDS = 1.0
_NAMES = {"rpm": "requests", "tpm": "tokens"}


@dataclass
class _Local:
    """This worker's view of one shared bucket."""

    capacity: int
    rate: float  # tokens per second
    level: float = 0.0  # the shared level at synced_at
    synced_at: float = 0.0
    granted: int = 0  # requests: leased tokens not yet spent
    lease_until: float = 0.0
    denied_until: float = 0.0
    pending: int = 0  # tokens: used here, not yet written
    # Held while this worker reads or writes the shared bucket: the requests
    # arriving meanwhile wait for that one statement (or, before their body
    # is read, skip the early check), instead of each taking one of the
    # pool's connections for the same statement: 1,000 streams arriving at
    # once on PostgreSQL had exhausted the pool.
    syncing: threading.Lock = field(default_factory=threading.Lock)

    def projected(self, now):
        refilled = self.level + max(0.0, now - self.synced_at) * self.rate
        return min(self.capacity, refilled) - self.pending


def _sync(key_name, kind, capacity, rate, take=0, debit=0, now=None):
    """Refill the shared bucket, subtract `debit`, take up to `take` whole
    tokens; returns (taken, level left)."""
    now = time.time() if now is None else now
    where = (RateBucket.key_name == key_name) & (RateBucket.kind == kind)
    locking = isinstance(database.obj, PostgresqlDatabase)

    def locked_row():
        query = RateBucket.select().where(where)
        return (query.for_update() if locking else query).first()

    # The bucket row is read and rewritten under a lock: FOR UPDATE on
    # PostgreSQL, the database write lock on SQLite.
    with write_transaction():
        # Rate-limit state a database crash may roll back by a fraction of a
        # second: not worth a wait on its disk in the request that leases.
        commit_without_waiting_for_disk()
        row = locked_row()
        if row is None:
            RateBucket.insert(
                key_name=key_name, kind=kind, level=capacity, updated_at=now
            ).on_conflict_ignore().execute()
            row = locked_row()
        level = min(capacity, row.level + max(0.0, now - row.updated_at) * rate) - debit
        taken = min(take, int(level)) if level >= 1 else 0
        level -= taken
        # Hosts' clocks differ a little: a `now` behind the row's must not move
        # it back, or the next sync would refill the same seconds again.
        stamp = max(now, row.updated_at)
        RateBucket.update(level=level, updated_at=stamp).where(where).execute()
    return taken, level


def _level(key_name, kind, capacity, rate, now):
    """The shared bucket's level now, as read (a missing row is a full bucket)."""
    row = (
        RateBucket.select(RateBucket.level, RateBucket.updated_at)
        .where((RateBucket.key_name == key_name) & (RateBucket.kind == kind))
        .first()
    )
    if row is None:
        return capacity
    return min(capacity, row.level + max(0.0, now - row.updated_at) * rate)


def _duration(seconds):
    """OpenAI's spelling of a reset time: 120ms, 2s, 1m30s."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{math.ceil(seconds)}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


@dataclass(frozen=True)
class _Holder:
    """Whose limits a bucket enforces: a key (kinds "rpm", "tpm") or a team,
    whose keys share its buckets (kinds "team_rpm", "team_tpm")."""

    what: str  # "key" or "team"
    name: str
    rpm: int
    tpm: int

    def kind(self, limit):
        return limit if self.what == "key" else f"team_{limit}"


def _holders(key):
    """The limits a key's request counts against: its own, and its team's."""
    holders = [_Holder("key", key.name, key.rpm, key.tpm)]
    if key.team is not None:
        holders.append(_Holder("team", key.team.name, key.team.rpm, key.team.tpm))
    return holders


class RateLimiter:
    """One per worker."""

    def __init__(self):
        self._buckets = {}

    def _bucket(self, holder, limit):
        capacity = getattr(holder, limit)
        kind = holder.kind(limit)
        bucket = self._buckets.get((holder.name, kind))
        if bucket is None or bucket.capacity != capacity:
            bucket = self._buckets[(holder.name, kind)] = _Local(capacity, capacity / 60.0)
        return bucket

    def admit(self, key):
        """Let one request of `key` through, or raise RateLimited: the key's
        limits and its team's."""
        now = time.time()
        holders = _holders(key)
        # Tokens first: a request refused for tokens must not spend a request.
        for holder in holders:
            if holder.tpm:
                bucket = self._bucket(holder, "tpm")
                if now - bucket.synced_at >= SYNC_SECONDS:
                    with bucket.syncing:
                        if now - bucket.synced_at >= SYNC_SECONDS:
                            self._write_tokens(holder.name, holder.kind("tpm"), bucket, now)
                if bucket.projected(now) <= 0:
                    wait = (1 - bucket.projected(now)) / bucket.rate
                    raise self._refused(holder, "tpm", wait, now)
        for holder in holders:
            if holder.rpm:
                self._take_request(holder, self._bucket(holder, "rpm"), now)

    def check(self, key):
        """Raise RateLimited if `key` or its team is over a limit now, spending
        nothing: for a request whose body is not read yet (admit() spends).
        Decided from memory when this worker holds a lease or knows the
        bucket is empty, else from one read of the shared bucket (no lock, no
        write)."""
        now = time.time()
        for holder in _holders(key):
            if holder.tpm:
                bucket = self._bucket(holder, "tpm")
                if bucket.projected(now) <= 0:
                    wait = (1 - bucket.projected(now)) / bucket.rate
                    raise self._refused(holder, "tpm", wait, now)
            if not holder.rpm:
                continue
            bucket = self._bucket(holder, "rpm")
            if bucket.granted > 0 and now < bucket.lease_until:
                continue
            if now < bucket.denied_until:
                raise self._refused(holder, "rpm", bucket.denied_until - now, now)
            if not bucket.syncing.acquire(blocking=False):
                continue  # another request is reading it: admit() decides
            try:
                level = _level(holder.name, holder.kind("rpm"), bucket.capacity, bucket.rate, now)
            finally:
                bucket.syncing.release()
            if level < 1:
                bucket.level, bucket.synced_at = level, now
                bucket.denied_until = now + (1 - level) / bucket.rate
                raise self._refused(holder, "rpm", bucket.denied_until - now, now)

    def _take_request(self, holder, bucket, now):
        if bucket.granted > 0 and now < bucket.lease_until:
            bucket.granted -= 1
            return
        with bucket.syncing:
            self._lease_request(holder, bucket, time.time())

    def _lease_request(self, holder, bucket, now):
        if bucket.granted > 0 and now < bucket.lease_until:
            bucket.granted -= 1  # leased by the request this one waited for
            return
        if now < bucket.denied_until:
            raise self._refused(holder, "rpm", bucket.denied_until - now, now)
        lease = max(1, int(bucket.rate / 10))
        taken, level = _sync(
            holder.name, holder.kind("rpm"), bucket.capacity, bucket.rate, take=lease, now=now
        )
        bucket.level, bucket.synced_at = level, now
        if not taken:
            bucket.denied_until = now + (1 - level) / bucket.rate
            raise self._refused(holder, "rpm", bucket.denied_until - now, now)
        bucket.granted, bucket.lease_until = taken - 1, now + LEASE_SECONDS

    def used_tokens(self, key_name, tokens, team_name=None):
        """Count a finished request's tokens against its key's tpm and its team's."""
        for name, kind in ((key_name, "tpm"), (team_name, "team_tpm")):
            bucket = self._buckets.get((name, kind))
            if bucket is not None and tokens:
                bucket.pending += tokens

    def flush(self):
        """Write the tokens used here to the shared buckets (the flusher calls it)."""
        now = time.time()
        for (name, kind), bucket in list(self._buckets.items()):
            if kind.endswith("tpm") and bucket.pending:
                self._write_tokens(name, kind, bucket, now)

    def _write_tokens(self, name, kind, bucket, now):
        debit, bucket.pending = bucket.pending, 0
        try:
            _, bucket.level = _sync(name, kind, bucket.capacity, bucket.rate, debit=debit, now=now)
        except PeeweeException:
            bucket.pending += debit  # written with the next sync
            raise
        bucket.synced_at = now

    def _refused(self, holder, limit, wait, now):
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        for limit_kind in ("rpm", "tpm"):
            if getattr(holder, limit_kind):
                headers.update(self._headers(holder, limit_kind, now))
        name = _NAMES[limit]
        return RateLimited(
            f"rate limit reached for {holder.what} '{holder.name}' on {name} per minute "
            f"({limit}): limit {getattr(holder, limit)}; retry after "
            f"{headers['Retry-After']}s",
            name,
            headers,
        )

    def _headers(self, holder, limit, now):
        bucket = self._bucket(holder, limit)
        level = bucket.projected(now) + (bucket.granted if limit == "rpm" else 0)
        suffix = _NAMES[limit]
        return {
            f"x-ratelimit-limit-{suffix}": str(bucket.capacity),
            f"x-ratelimit-remaining-{suffix}": str(max(0, int(level))),
            f"x-ratelimit-reset-{suffix}": _duration(
                max(0.0, bucket.capacity - level) / bucket.rate
            ),
        }
