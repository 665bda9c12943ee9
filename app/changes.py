"""Change counters: how a worker learns, with one small read, that what it
caches (keys, models) was changed by another worker or host.

A writer bumps the counter in the transaction that makes the change; a
Snapshot compares the version it loaded with the current one, at most every
`refresh` seconds, so the database sees one tiny read per worker per
interval instead of one per request.
"""
import time

from app.models import ChangeCounter


def bump(name):
    # An upsert: a counter that no migration created (models) starts here.
    (ChangeCounter.insert(name=name, version=1)
     .on_conflict(conflict_target=[ChangeCounter.name],
                  update={ChangeCounter.version: ChangeCounter.version + 1})
     .execute())


def version(name):
    return (ChangeCounter.select(ChangeCounter.version)
            .where(ChangeCounter.name == name).scalar())


class Snapshot:
    """A worker's copy of what `load()` returns, reloaded when the counter
    `name` has moved; the counter is read at most every `refresh` seconds.
    The staleness bound of a change made elsewhere is therefore `refresh`."""

    def __init__(self, name, load, refresh):
        self._name, self._load, self._refresh = name, load, refresh
        self._value = None
        self._version = None
        self._checked = 0.0

    def current(self):
        now = time.monotonic()
        if self._value is None or now - self._checked >= self._refresh:
            # The version first: what is loaded after it is at least that new.
            latest = version(self._name)
            if self._value is None or latest != self._version:
                self._value, self._version = self._load(), latest
            self._checked = now
        return self._value

    def expire(self):
        """Read the counter on the next use (this worker just changed something)."""
        self._checked = 0.0
