"""Change counters: how a worker learns, with one small read, that what it
caches (keys, models) was changed by another worker or host.

A writer bumps the counter in the transaction that makes the change; a
Snapshot compares the version it loaded with the current one, at most every
`refresh` seconds, so the database sees one tiny read per worker per
interval instead of one per request. That is the bound across hosts.

On one host the writer also announces the change, once committed, by
adding one to an 8-byte count in a file of the instance directory (the
relay's workers and its CLI share it). Every Snapshot maps that file into
memory and compares the count on each use: a memory read, where a stat of
the file was two system calls per request. It reads the counter at once when
the count moved, so a change is seen at once by every worker of the host
where it was made: create a model, then use it.
"""

import mmap
import os
import struct
import time

from flask import current_app, has_app_context

from app.storage.files import private_folder
from app.storage.models import ChangeCounter

_COUNT = struct.Struct("<Q")


def _signal_path(directory, name):
    return os.path.join(directory, f".changed-{name}")


def _open_signal(directory, name):
    """The file descriptor of `name`'s count, made (8 zero bytes) if missing."""
    private_folder(directory)
    fd = os.open(_signal_path(directory, name), os.O_RDWR | os.O_CREAT, 0o600)
    if os.fstat(fd).st_size < _COUNT.size:
        os.ftruncate(fd, _COUNT.size)  # an empty file: an earlier version touched it
    return fd


def announce(name):
    """Tell this host's workers that `name` changed (call after the commit).
    Two writers at once may both write the same count: each committed before
    it read, so a reload the first write causes sees both changes."""
    if not has_app_context():
        return
    try:
        fd = _open_signal(current_app.config["RELAY_INSTANCE_PATH"], name)
        try:
            count = _COUNT.unpack(os.pread(fd, _COUNT.size, 0))[0]
            os.pwrite(fd, _COUNT.pack((count + 1) % 2**64), 0)
        finally:
            os.close(fd)
    except OSError:
        pass  # the counter still carries the change, within `refresh`


def _mapped_signal(directory, name):
    """`name`'s count mapped into memory, or None (the directory is not
    writable: changes are then seen within `refresh`)."""
    try:
        fd = _open_signal(directory, name)
    except OSError:
        return None
    try:
        return mmap.mmap(fd, _COUNT.size, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)  # the mapping keeps the file


def bump(name):
    # An upsert: a counter that no migration created (models) starts here.
    (
        ChangeCounter.insert(name=name, version=1)
        .on_conflict(
            conflict_target=[ChangeCounter.name],
            update={ChangeCounter.version: ChangeCounter.version + 1},
        )
        .execute()
    )


def version(name):
    return ChangeCounter.select(ChangeCounter.version).where(ChangeCounter.name == name).scalar()


class Snapshot:
    """A worker's copy of what `load()` returns, reloaded when the counter
    `name` has moved; the counter is read at most every `refresh` seconds.
    The staleness bound of a change made elsewhere is therefore `refresh`."""

    def __init__(self, name, load, refresh, directory):
        self._name, self._load, self._refresh = name, load, refresh
        self._mapped = _mapped_signal(directory, name)
        self._value = None
        self._version = None
        self._checked = 0.0
        self._signal = None

    def _signalled(self):
        return None if self._mapped is None else self._mapped[: _COUNT.size]

    def current(self):
        now = time.monotonic()
        signal = self._signalled()
        if self._value is None or signal != self._signal or now - self._checked >= self._refresh:
            self._signal = signal
            # One greenlet reads; the others go on with the copy meanwhile. Had
            # each of them read too, every request arriving while the database
            # was slow would wait for a pooled connection, a thousand at once
            # under load, until the pool's timeout.
            checked, self._checked = self._checked, now
            try:
                # The version first: what is loaded after it is at least that new.
                latest = version(self._name)
                if self._value is None or latest != self._version:
                    self._value, self._version = self._load(), latest
            except BaseException:
                self._checked = checked
                raise
        return self._value

    def expire(self):
        """Read the counter on the next use (this worker just changed something)."""
        self._checked = 0.0
