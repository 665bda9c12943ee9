"""Change counters: how a worker learns, with one small read, that what it
caches (keys, models) was changed by another worker or host.

A writer bumps the counter in the transaction that makes the change; a
Snapshot compares the version it loaded with the current one, at most every
`refresh` seconds, so the database sees one tiny read per worker per
interval instead of one per request. That is the bound across hosts.

On one host the writer also announces the change, once committed, by
touching a file in the instance directory (the relay's workers and its CLI
share it); every Snapshot stats that file on each use (a microsecond) and
reads the counter at once when it moved. So a change is seen at once by
every worker of the host where it was made: create a model, then use it.
"""
import os
import time

from flask import current_app, has_app_context

from app.models import ChangeCounter


def _signal_path(directory, name):
    return os.path.join(directory, f".changed-{name}")


def announce(name):
    """Tell this host's workers that `name` changed (call after the commit)."""
    if not has_app_context():
        return
    directory = current_app.config["RELAY_INSTANCE_PATH"]
    try:
        os.makedirs(directory, exist_ok=True)
        path = _signal_path(directory, name)
        with open(path, "a"):
            pass
        os.utime(path, None)
    except OSError:
        pass  # the counter still carries the change, within `refresh`


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

    def __init__(self, name, load, refresh, directory):
        self._name, self._load, self._refresh = name, load, refresh
        self._path = _signal_path(directory, name)
        self._value = None
        self._version = None
        self._checked = 0.0
        self._signal = None

    def _signalled(self):
        try:
            return os.stat(self._path).st_mtime_ns
        except OSError:
            return None

    def current(self):
        now = time.monotonic()
        signal = self._signalled()
        if self._value is None or signal != self._signal or now - self._checked >= self._refresh:
            self._signal = signal
            # The version first: what is loaded after it is at least that new.
            latest = version(self._name)
            if self._value is None or latest != self._version:
                self._value, self._version = self._load(), latest
            self._checked = now
        return self._value

    def expire(self):
        """Read the counter on the next use (this worker just changed something)."""
        self._checked = 0.0
