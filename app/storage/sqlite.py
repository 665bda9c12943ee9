"""SQLite with one connection per worker process, shared by its greenlets.

Opening a connection per request costs the connect and the pragmas, and
closing the last connection to a WAL database checkpoints it with an fsync:
a request then waits on the disk, and on whatever else the disk is doing.
Here a process opens its connection once, and keeps it.

peewee keeps its connection state per thread, which gevent makes per
greenlet: each greenlet keeps its own transaction stack while all of them
use the one connection. A transaction belongs to one greenlet at a time: it
holds the process's write lock from BEGIN to COMMIT or ROLLBACK, and a
statement outside a transaction waits for a transaction of another greenlet
to end, so it never lands inside someone else's transaction.

WAL checkpoints are left to a background thread (a real one under gevent,
so its fsync never blocks the worker's loop), every CHECKPOINT_SECONDS, on a
connection of its own. SQLite's own threshold stays as a backstop, raised so
that a request pays for a checkpoint only when the thread falls far behind.
"""

import logging
import os
import sqlite3
import threading
import weakref

from peewee import SqliteDatabase

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 1.0
# Pages of WAL past which a commit checkpoints in line (SQLite's default
# is 1000): only reached when the background thread cannot keep up.
BACKSTOP_PAGES = 20000


def _original(module, name):
    """The standard library's `name`, even after gevent patched it. (The
    original threading.Thread would not do: its module's locks and events
    are gevent's once patched; _thread's start_new_thread is the OS's.)"""
    from gevent import monkey

    return monkey.get_original(module, name)


class WorkerSqliteDatabase(SqliteDatabase):
    """A SqliteDatabase whose connection lives as long as its process."""

    def __init__(self, *args, **kwargs):
        self._shared = None
        self._shared_pid = None
        # Reentrant, per greenlet under gevent (threading is patched).
        self._writer = threading.RLock()
        super().__init__(*args, **kwargs)

    def _connect(self):
        if self._shared is None or self._shared_pid != os.getpid():
            # A process never uses a connection it inherited across a fork.
            self._shared = self._open()
            self._shared_pid = os.getpid()
            self._start_checkpoints()
        return self._shared

    def _open(self):
        params = dict(self.connect_params, check_same_thread=False)
        conn = sqlite3.connect(self.database, timeout=self._timeout, isolation_level=None, **params)
        self._add_conn_hooks(conn)
        conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
        return conn

    def _close(self, conn):
        """Kept open: a request that ends gives its greenlet's hold back, nothing more."""

    def begin(self, lock_type=None):
        self._writer.acquire()
        self._state.holding = getattr(self._state, "holding", 0) + 1
        try:
            super().begin(lock_type)
        except BaseException:
            self._release()
            raise

    def commit(self):
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._release()

    def _release(self):
        # A failed COMMIT is followed by a ROLLBACK: release once per BEGIN.
        if getattr(self._state, "holding", 0):
            self._state.holding -= 1
            self._writer.release()

    def execute_sql(self, sql, params=None):
        if getattr(self._state, "holding", 0):
            return super().execute_sql(sql, params)
        with self._writer:
            return super().execute_sql(sql, params)

    def _start_checkpoints(self):
        if self.database in ("", ":memory:") or self.database.startswith("file:"):
            return
        _original("_thread", "start_new_thread")(
            _checkpoints, (weakref.ref(self), self.database, self._timeout)
        )


def _checkpoints(owner, path, timeout):
    """PASSIVE checkpoints every CHECKPOINT_SECONDS while `owner` lives in
    this process: they copy what readers no longer need, never wait for a
    writer and never make one wait. Each one syncs the WAL first, so a power
    loss can take at most what was committed since the last one."""
    sleep = _original("time", "sleep")
    pid = os.getpid()
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        while True:
            sleep(CHECKPOINT_SECONDS)
            database = owner()
            if database is None or database._shared_pid != pid or database._shared is None:
                return
            del database
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed (next try in a second): %s", exc)
    finally:
        conn.close()
