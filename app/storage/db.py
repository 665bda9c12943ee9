"""The database: one DatabaseProxy, opened from RELAY_DATABASE_URL, migrated on start."""

import contextlib
import fcntl
import logging
import os
import zlib
from urllib.parse import urlsplit

from peewee import DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse import db_url
from playhouse.migrations import Runner

import migrations
from app.storage.files import private_file, private_folder, world_readable
from app.storage.sqlite import WorkerSqliteDatabase

log = logging.getLogger(__name__)

database = DatabaseProxy()

MIGRATIONS_DIR = os.path.dirname(migrations.__file__)

# Concurrent gevent workers share one SQLite file: WAL lets readers run
# beside the writer, and the busy timeout makes writers wait instead of fail.
# NORMAL: a commit writes the WAL without an fsync; a killed process loses
# nothing committed (the OS has the pages), a power loss what was committed
# since the last checkpoint (app/storage/sqlite.py runs one every second).
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10000,
    "synchronous": "normal",
    "foreign_keys": 1,
}

# A fixed key for pg_advisory_lock, so every host migrating one database
# serialises on the same lock.
_PG_MIGRATION_LOCK = zlib.crc32(b"ollama-relay migrations")

# Plain postgresql:// URLs are pooled too: a gateway that opens a server
# connection per request falls over under load, and nobody asks for that.
_POOLED_SCHEMES = {"postgres": "postgresql+pool", "postgresql": "postgresql+pool"}


def open_database(url, max_connections=20):
    """Open (lazily) the database that `url` names, with our tuning applied."""
    scheme, _, rest = url.partition("://")
    scheme = _POOLED_SCHEMES.get(scheme, scheme)
    url = f"{scheme}://{rest}"
    if scheme.startswith("sqlite"):
        path = urlsplit(url).path[1:]
        if path and path != ":memory:" and not path.startswith("file:"):
            private_folder(os.path.dirname(os.path.abspath(path)))
            private_file(path)
            if world_readable(path):
                log.warning(
                    "the database %s may be read by other users of this machine "
                    "(it holds stored conversations): chmod 600 it",
                    path,
                )
        if scheme == "sqlite":
            # One connection per worker process (app/storage/sqlite.py).
            return WorkerSqliteDatabase(
                db_url.parse(url)["database"], pragmas=SQLITE_PRAGMAS, timeout=10
            )
        return db_url.connect(url, pragmas=SQLITE_PRAGMAS, timeout=10)
    if scheme.endswith("+pool"):
        return db_url.connect(url, max_connections=max_connections, stale_timeout=300, timeout=10)
    return db_url.connect(url)


def init_app(app):
    database.initialize(
        open_database(
            app.config["RELAY_DATABASE_URL"], app.config["RELAY_DATABASE_MAX_CONNECTIONS"]
        )
    )
    if app.config["RELAY_AUTO_MIGRATE"]:
        upgrade()

    # peewee connects on first use; closing after every request returns
    # pooled connections and keeps streams (which outlive the view
    # function) from holding one for minutes. On SQLite it only lets go of
    # the request's hold on the worker's one connection, which stays open.
    @app.teardown_appcontext
    def close_connection(exc):
        if not database.is_closed():
            database.close()


def write_transaction():
    """A transaction that will write. On SQLite it takes the write lock at
    BEGIN (IMMEDIATE): a deferred transaction that reads first and writes
    later fails at once with "database is locked" when another writer
    committed in between, where IMMEDIATE waits out the busy timeout."""
    if isinstance(database.obj, SqliteDatabase):
        return database.atomic("IMMEDIATE")
    return database.atomic()


def commit_without_waiting_for_disk():
    """Within a write transaction: on PostgreSQL its COMMIT returns before the
    server's WAL reaches its disk (synchronous_commit off, for this
    transaction only). The commit is visible to every session at once and a
    relay worker killed after it loses nothing; a crash of the database
    server can lose its last fraction of a second of such commits
    (3 x wal_writer_delay at most), as SQLite's synchronous=NORMAL can on a
    power loss. A commit that waited would make the request behind it wait
    on whatever else that disk is doing. SQLite: nothing to do."""
    if isinstance(database.obj, PostgresqlDatabase):
        database.execute_sql("SET LOCAL synchronous_commit TO OFF")


@contextlib.contextmanager
def _migrating():
    """A connection, held by one migrating process at a time, across hosts too."""
    db = database.obj
    if isinstance(db, SqliteDatabase) and db.database not in ("", ":memory:"):
        # The file lock before the connection: connecting sets the pragmas, and
        # turning a new file to WAL fails at once ("database is locked", no
        # busy wait) while another process holds it, as the first worker of
        # a fresh install does while it migrates: the second would not boot.
        lock = os.open(db.database + ".migrate-lock", os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                with database.connection_context():
                    yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with database.connection_context():
        if isinstance(db, PostgresqlDatabase):
            db.execute_sql("SELECT pg_advisory_lock(%s)", (_PG_MIGRATION_LOCK,))
            try:
                yield
            finally:
                db.execute_sql("SELECT pg_advisory_unlock(%s)", (_PG_MIGRATION_LOCK,))
        else:
            yield


def upgrade():
    """Apply pending migrations; returns their names. Safe to run concurrently."""
    with _migrating():
        applied = Runner(database.obj, MIGRATIONS_DIR).up()
    for name in applied:
        log.info("applied migration %s", name)
    return applied


def pending_migrations():
    """Names of migrations not yet applied (empty when the schema is current)."""
    with database.connection_context():
        return [
            m.name
            for m in Runner(database.obj, MIGRATIONS_DIR).status()
            if m.applied is None and m.path is not None
        ]
