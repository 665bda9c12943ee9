"""ops/bench/soak's workload, bounded: 300 mixed requests (faults on every
surface, stored Responses chained through failures and deletes, concurrent
model writes) through gunicorn with 2 workers on PostgreSQL, then the ledger's
checks: the database holds exactly what the clients were told it holds."""

import time

import pytest

from tests.soak.checks import verify
from tests.soak.workload import Upstream, create_models, run
from tests.support.config import relay_settings
from tests.support.faults import RELAY_SETTINGS
from tests.support.postgres import postgres_schema_url
from tests.support.servers import GunicornServer

REQUESTS = 300
SEED = 7  # a failure reruns the same mix: `ops/bench/soak --seed 7` with SOAK_REQUESTS=300


@pytest.fixture
def soak_relay(tmp_path):
    url, drop = postgres_schema_url()
    upstream = Upstream()
    relay = None
    try:
        relay = GunicornServer(
            relay_settings(
                tmp_path,
                url,
                **RELAY_SETTINGS,
                # Every fault logs a warning; access lines would only add noise.
                RELAY_LOG_LEVEL="WARNING",
            ),
            tmp_path,
            workers=2,
        )
        yield relay, upstream, url
    finally:
        if relay is not None:
            relay.stop()
        upstream.close()
        drop()


@pytest.mark.slow
def test_the_database_holds_what_was_acknowledged(soak_relay):
    relay, upstream, database_url = soak_relay
    create_models(relay.url, upstream)
    started = time.monotonic()
    ledger = run(relay.url, upstream, REQUESTS, seconds=120, clients=8, seed=SEED)
    assert time.monotonic() - started < 120, "the budget ran out of time, not requests"
    summary, problems = verify(relay.url, ledger, database_url)
    print("\n".join(summary))
    assert not problems, "\n".join(problems)
    assert not ledger.unexpected, ledger.unexpected[:5]
    assert not ledger.hung and not ledger.by_status[500], dict(ledger.by_status)
    # The mix did what it is for: each kind of outcome happened.
    counts = ledger.counts
    for kind in (
        "responses completed",
        "responses failed",
        "responses deleted",
        "model create 200",
        "model refused 400",
    ):
        assert counts[kind] > 0, (kind, dict(counts))
    assert any(rid for rid in ledger.failed), "no failed turn showed its id"
    assert "Traceback" not in relay.log(), relay.log()[-3000:]
