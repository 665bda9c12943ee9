"""A fresh PostgreSQL schema per test, on the server RELAY_TEST_POSTGRES_URL names."""

import os
import uuid
from collections.abc import Callable
from urllib.parse import quote

import pytest

PG_URL = os.environ.get("RELAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# CI sets this so that a missing PostgreSQL fails the run instead of skipping.
PG_REQUIRED = os.environ.get("RELAY_TEST_REQUIRE_POSTGRES") == "1"


def _postgres_reachable() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


_PG_UP = None


def postgres_schema_url() -> tuple[str, Callable[[], None]]:
    """A URL whose connections live in a fresh schema, and a function to drop it."""
    global _PG_UP
    if _PG_UP is None:
        _PG_UP = _postgres_reachable()
    if not _PG_UP:
        if PG_REQUIRED:
            pytest.fail(f"PostgreSQL required but unreachable at {PG_URL}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    import psycopg

    schema = "relay_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            # The apps a test built in this process keep their pooled
            # connections (and a usage flusher) until the process exits:
            # end them here, or a few hundred tests use up the server's
            # max_connections (100 by default).
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (schema,),
            )
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    url = f"{PG_URL}?options={quote('-csearch_path=' + schema)}&application_name={schema}"
    return url, drop
