"""Fixtures: the app on each database (`app`, `client`), real servers (`relay`)."""

import ssl

import pytest
import trustme

from app import create_app
from tests.support.config import GATEWAY_KEY, relay_settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.models import create_model
from tests.support.postgres import postgres_schema_url
from tests.support.servers import GunicornServer, compile_relay

# Fixtures that start the relay under gunicorn, and those on PostgreSQL.
SERVER_FIXTURES = {
    "relay",
    "relay_with",
    "gateway",
    "open_relay",
    "secured",
    "cluster",
    "sqlite_relay",
    "gunicorn",
    "proxied_relay",
    "soak_relay",
    "module_relays",
}
POSTGRES_FIXTURES = {"cluster", "soak_relay"}


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # once, in the controlling process
        compile_relay()


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & SERVER_FIXTURES:
            item.add_marker(pytest.mark.server)
        params = getattr(getattr(item, "callspec", None), "params", {})
        databases = {params.get("database_url"), params.get("module_database")}
        if names & POSTGRES_FIXTURES or "postgresql" in databases:
            item.add_marker(pytest.mark.postgres)
    spread_slow_tests(config, items)


def spread_slow_tests(config, items):
    """Tests marked `slow` take minutes. Under pytest-xdist each worker first
    gets a run of consecutive tests (a quarter of its share: xdist's
    LoadScheduling); each slow test is put at the head of one such run, so
    the slow ones start at once on different workers and the rest flows
    around them, instead of adding their whole length at the end of the run.
    Only the order changes."""
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    if workers < 2:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    rest = [item for item in items if not item.get_closest_marker("slow")]
    run = max(2, len(items) // workers // 4)
    # The i-th slow test heads worker i's first run (with more slow tests than
    # workers, the next ones come second).
    places = {i % workers * run + i // workers: item for i, item in enumerate(slow)}
    if not places or max(places) >= len(items):
        return  # a small selection: nothing to spread
    rest = iter(rest)
    items[:] = [places[p] if p in places else next(rest) for p in range(len(items))]


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
    return relay_settings(tmp_path, database_url)


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
        relay_settings(
            workdir,
            RELAY_READ_TIMEOUT="3",
            # Many tests make the one fake upstream fail on purpose; none of them
            # may put it in cool-down for the next (tests/remotes/test_fallbacks.py has
            # relays of its own for that).
            RELAY_COOLDOWN_FAILURES="1000000",
        ),
        workdir,
    )
    yield server
    server.stop()
    # Every chat, Responses, Agents SDK and Codex test ran through this relay,
    # with this key and upstreams that echo it: none of it may reach a log.
    log = server.log()
    for secret in (GATEWAY_KEY, GATEWAY_KEY[3:15], "Bearer", "uthorization"):
        assert secret not in log, f"the gateway's log holds {secret!r}"


@pytest.fixture
def remote_model(gateway, upstream):
    """create(name, **fields): a model on the gateway pointing at the fake upstream."""

    def create(name="remote", remote_type="openai", path="/v1", **fields):
        fields = {"remote_type": remote_type, "remote_api_key": GATEWAY_KEY, **fields}
        create_model(gateway, name, upstream.url + path, **fields)
        return name

    return create


@pytest.fixture
def relay_with(tmp_path):
    """relay_with(workers=1, env=None, **settings): a relay under gunicorn on its
    own SQLite file, with settings (and other environment variables) of the test's.
    One worker starts in half the time of two: pass workers=2 where what is
    tested crosses workers (caches, metrics, limits, graceful stops)."""
    started = []

    def start(workers=1, env=None, **settings):
        started.append(
            GunicornServer(
                relay_settings(tmp_path, **settings), tmp_path, workers=workers, extra_env=env
            )
        )
        return started[-1]

    yield start
    for server in started:
        server.stop()


class RelayPool:
    """Relays under gunicorn kept for a scope and shared by its tests: one per
    distinct (database, workers, env, settings), started on first use."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self._started = {}
        self._drops = []

    def get(self, database="sqlite", workers=1, env=None, **settings):
        key = (database, workers, sorted((env or {}).items()), sorted(settings.items()))
        key = repr(key)
        if key not in self._started:
            workdir = self._tmp.mktemp("shared-relay")
            url = None
            if database == "postgresql":
                url, drop = postgres_schema_url()
                self._drops.append(drop)
            self._started[key] = GunicornServer(
                relay_settings(workdir, url, **settings), workdir, workers=workers, extra_env=env
            )
        return self._started[key]

    def stop(self):
        for server in self._started.values():
            server.stop()
        for drop in self._drops:
            drop()


@pytest.fixture(scope="module")
def module_relays(tmp_path_factory):
    """module_relays.get(database="sqlite", workers=1, env=None, **settings): a
    relay started once per test module (per xdist worker) for each distinct
    set of arguments, for tests that need a relay but not a fresh one. Tests
    run one at a time on an xdist worker, so what they share is the state they
    leave: such tests use names (models, keys) of their own, and count rows,
    log lines and metrics as changes, not totals."""
    pool = RelayPool(tmp_path_factory)
    yield pool
    pool.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database(request):
    """The database a module's shared relay runs on, each in turn (see
    `database_url`, its per-test counterpart)."""
    return request.param


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
