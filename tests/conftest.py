"""Fixtures: the app on each database (`app`, `client`), real servers (`relay`)."""

import os
import ssl
import uuid
from urllib.parse import quote

import pytest
import trustme
from cryptography.fernet import Fernet

from app import create_app
from tests.fake_upstream import FakeUpstream
from tests.servers import GunicornServer

PG_URL = os.environ.get("RELAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# CI sets this so that a missing PostgreSQL fails the run instead of skipping.
PG_REQUIRED = os.environ.get("RELAY_TEST_REQUIRE_POSTGRES") == "1"

SECRET_KEY = Fernet.generate_key().decode()


# Tests that take minutes (a full Ansible converge, schemathesis), longest
# first. Under pytest-xdist each worker first gets a run of consecutive tests
# (a quarter of its share: xdist's LoadScheduling); each long test is put at
# the head of one such run, so the long ones start at once on different
# workers and the rest flows around them, instead of adding their whole
# length at the end of the run. Only the order changes.
SLOW = (
    "test_ops_ansible.py::test_role_converges",
    "test_openapi.py::test_schemathesis",
    "test_access_shared.py::test_usage_rows",
    "test_soak.py::",
)


def pytest_collection_modifyitems(config, items):
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    if workers < 2:
        return

    def rank(item):
        return next((i for i, name in enumerate(SLOW) if name in item.nodeid), len(SLOW))

    slow = sorted((item for item in items if rank(item) < len(SLOW)), key=rank)
    rest = [item for item in items if rank(item) == len(SLOW)]
    run = max(2, len(items) // workers // 4)
    # The i-th long test heads worker i's first run (with more long tests than
    # workers, the next ones come second).
    places = {i % workers * run + i // workers: item for i, item in enumerate(slow)}
    if not places or max(places) >= len(items):
        return  # a small selection: nothing to spread
    rest = iter(rest)
    items[:] = [places[p] if p in places else next(rest) for p in range(len(items))]


def _postgres_reachable():
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


_PG_UP = None


def postgres_schema_url():
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

    def drop():
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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/relay.sqlite3"
        return
    url, drop = postgres_schema_url()
    yield url
    drop()


@pytest.fixture
def settings(database_url, tmp_path):
    return {
        "RELAY_DATABASE_URL": database_url,
        "RELAY_INSTANCE_PATH": str(tmp_path / "instance"),
        "RELAY_SECRET_KEY": SECRET_KEY,
        # The fake upstreams listen on loopback.
        "RELAY_REMOTE_ALLOWLIST": "127.0.0.1",
    }


@pytest.fixture
def make_app(settings):
    """create_app() on this test's database, with settings overridden."""

    def make(**overrides):
        app = create_app(dict(settings, **overrides))
        app.config["TESTING"] = True
        return app

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def relay(settings, tmp_path):
    """The relay under gunicorn with gevent workers, on a free loopback port."""
    server = GunicornServer(settings, tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def upstream_server():
    server = FakeUpstream()
    yield server
    server.close()


@pytest.fixture
def upstream(upstream_server):
    """The fake OpenAI-compatible upstream, with no queued replies or records."""
    upstream_server.reset()
    yield upstream_server
    upstream_server.release.set()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    """One relay under gunicorn (SQLite) shared by the chat tests: they
    create the models they use, so no test depends on another's."""
    workdir = tmp_path_factory.mktemp("gateway")
    server = GunicornServer(
        {
            "RELAY_DATABASE_URL": f"sqlite:///{workdir}/relay.sqlite3",
            "RELAY_INSTANCE_PATH": str(workdir / "instance"),
            "RELAY_SECRET_KEY": SECRET_KEY,
            "RELAY_REMOTE_ALLOWLIST": "127.0.0.1",
            "RELAY_READ_TIMEOUT": "3",
            # Many tests make the one fake upstream fail on purpose; none of them
            # may put it in cool-down for the next (tests/test_fallbacks.py has
            # relays of its own for that).
            "RELAY_COOLDOWN_FAILURES": "1000000",
        },
        workdir,
    )
    yield server
    server.stop()
    # Every chat, Responses, Agents SDK and Codex test ran through this relay,
    # with this key and upstreams that echo it: none of it may reach a log.
    log = server.log()
    for secret in (GATEWAY_KEY, GATEWAY_KEY[3:15], "Bearer", "uthorization"):
        assert secret not in log, f"the gateway's log holds {secret!r}"


GATEWAY_KEY = "sk-test-key-123456"


@pytest.fixture
def remote_model(gateway, upstream):
    """create(name, **fields): a model on the gateway pointing at the fake upstream."""
    import requests

    def create(name="remote", remote_type="openai", path="/v1", **fields):
        body = {
            "name": name,
            "from": "remote-model",
            "remote_type": remote_type,
            "remote_host": upstream.url + path,
            "remote_api_key": GATEWAY_KEY,
            "stream": False,
            **fields,
        }
        response = requests.post(gateway.url + "/api/create", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return name

    return create


@pytest.fixture
def relay_with(tmp_path):
    """relay_with(workers=2, env=None, **settings): a relay under gunicorn on its
    own SQLite file, with settings (and other environment variables) of the test's."""
    started = []

    def start(workers=2, env=None, **settings):
        base = {
            "RELAY_DATABASE_URL": f"sqlite:///{tmp_path}/relay.sqlite3",
            "RELAY_INSTANCE_PATH": str(tmp_path / "instance"),
            "RELAY_SECRET_KEY": SECRET_KEY,
            "RELAY_REMOTE_ALLOWLIST": "127.0.0.1",
        }
        started.append(
            GunicornServer({**base, **settings}, tmp_path, workers=workers, extra_env=env)
        )
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def tls_upstream(tmp_path_factory):
    """A TLS fake upstream on 127.0.0.1, and the file of the (corporate) CA that signed it."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path_factory.mktemp("ca") / "corporate-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = FakeUpstream(ssl_context=context)
    yield server, str(ca_file)
    server.close()
