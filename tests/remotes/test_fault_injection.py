"""Fault injection through gunicorn's gevent worker: every fault of
tests/support/faults.py, on every surface, streamed and not, against one relay with a
single worker and its own fake upstream. A whole (not streamed) answer is read
one way on a new connection and another on one the pool kept open
(app.fast.kept_connection, when on): each fault meets both. Each case checks what a client sees
(status, the surface's error shape, a message naming the remote, or the
answer after a retry or fallback) within a request timeout; the last test
then checks the worker those cases ran on: its connections to the remote
back within the pool, its memory bounded, and /api/tags answering at once.
"""

import pytest
import requests

from app.remotes.http.client import POOL_MAXSIZE
from tests.support.config import relay_settings
from tests.support.fake_upstream import FakeUpstream, Reply, completion
from tests.support.faults import (
    FALLBACK_ANSWER,
    RELAY_SETTINGS,
    SURFACES,
    check_answer,
    children,
    established_to,
    fault_names,
    faults,
    rss_bytes,
)
from tests.support.models import create_model
from tests.support.servers import GunicornServer

# Each case ends within this, or fails: the slowest legitimate one waits a
# 1 s read timeout, or three calls with two backoffs (0.75 s at most).
CASE_TIMEOUT = 10
# The worker's RSS after the matrix: measured at 69 MB (68 MB before it).
# Headroom for a loaded machine, yet the 10 MB bodies read whole (4 cases)
# and the 10 MB lines (8 cases), if a reference to them leaked, would pass it.
RSS_BOUND = 120 * 1024 * 1024


@pytest.fixture(scope="module")
def upstream():
    server = FakeUpstream()
    yield server
    server.close()


@pytest.fixture(scope="module")
def relay(tmp_path_factory, upstream):
    workdir = tmp_path_factory.mktemp("fault-injection")
    # One worker: every case runs on the process the last test looks at.
    server = GunicornServer(relay_settings(workdir, **RELAY_SETTINGS), workdir, workers=1)
    create = [
        {"name": "faulty"},
        {"name": "backup", "remote_host": upstream.url + "/backup/v1"},
        {"name": "primary", "fallbacks": ["backup"]},
    ]
    for fields in create:
        create_model(server, **{"remote_host": upstream.url + "/v1", **fields})
    (server.worker,) = children(server.process.pid)
    yield server
    server.stop()
    # Whichever tests of the module ran on this relay (xdist may split them).
    assert "Traceback" not in server.log()


# Whole answers: on a "new" connection, or one the pool "kept" open. Streams
# take one path either way.
CASES = [
    (fault, False, connection) for fault in fault_names(False) for connection in ("new", "kept")
] + [(fault, True, None) for fault in fault_names(True)]


def _leave_the_pool(relay, upstream, surface, connection):
    """After an answered call the relay's pool holds the connection it went
    out on ("kept"), or none, its remote having closed it ("new"); returns
    that connection's address on the remote's side."""
    upstream.reset()
    upstream.reply(Reply(json=completion(), close=connection == "new"))
    response = surface.ask(relay.url, "faulty", False, CASE_TIMEOUT)
    assert response.status_code == 200, response.text
    return upstream.last.peer


@pytest.mark.parametrize("surface", SURFACES, ids=repr)
@pytest.mark.parametrize(
    "fault, stream, connection",
    CASES,
    ids=[f"{f}-{'stream' if s else 'whole-' + c}" for f, s, c in CASES],
)
def test_fault(relay, upstream, surface, fault, stream, connection):
    (fault,) = [f for f in faults(stream, upstream.url) if f.name == fault]
    expected = fault.outcome
    if connection is not None:
        pooled = _leave_the_pool(relay, upstream, surface, connection)
    upstream.reset()
    upstream.reply(*fault.replies)
    model = "primary" if fault.name == "fallback" else "faulty"
    # The request timeout is the bound: a hang fails here.
    response = surface.ask(relay.url, model, stream, CASE_TIMEOUT)
    check_answer(surface, expected, stream, response)
    # Retried as documented: only what may not have reached the remote's
    # application, and not what the remote did answer (a stream that began).
    assert len(upstream.requests) == expected.calls
    if expected.answer == FALLBACK_ANSWER:
        assert upstream.last.path == "/backup/v1/chat/completions"
    if connection is not None:  # the fault met the connection it was meant to
        assert (upstream.requests[0].peer == pooled) == (connection == "kept")


def test_the_worker_is_sound_after_the_faults(relay, upstream):
    """Last in the module: the worker all the cases above ran on (the same
    process: none of them killed it)."""
    assert children(relay.process.pid) == [relay.worker]
    # Every call's connection went back to the pool or was closed; a leaked
    # one (a response never closed) stays ESTABLISHED. One request at a time
    # needs one connection; the pool may keep POOL_MAXSIZE.
    assert established_to(relay.worker, upstream.port) <= min(POOL_MAXSIZE, 2)
    assert rss_bytes(relay.worker) < RSS_BOUND
    assert requests.get(relay.url + "/api/tags", timeout=2).status_code == 200
    assert "Traceback" not in relay.log()
