"""Each worker keeps the models in memory: what a change costs the others.

README's bounds: on the host where a model is created, replaced or deleted,
every worker sees it at once; another host sharing the database within 1
second (a new model at once). Gunicorn with two gevent workers; fresh
connections so that requests reach both. Two relays with instance
directories of their own on one database file stand for two hosts.
"""

import time

import pytest
import requests

from tests.support.config import relay_settings
from tests.support.models import create_model
from tests.support.servers import GunicornServer

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
BOUND_SECONDS = 1.0
SLACK_SECONDS = 1.0  # a loaded CI machine: the bound plus this, then fail


def create(relay, upstream, remote_model):
    # Created as a client of Ollama's API would: the answer streamed.
    create_model(relay, "cached", upstream.url + "/v1", stream=None, **{"from": remote_model})


def ask(relay):
    with requests.Session() as fresh:  # a new connection: either worker
        return fresh.post(
            relay.url + "/v1/chat/completions", timeout=10, json={"model": "cached", **CHAT}
        )


def asked(relay, upstream, times=10):
    """(statuses, remote models the upstream was asked for) of `times` requests."""
    since = len(upstream.requests)
    statuses = [ask(relay).status_code for _ in range(times)]
    return statuses, {
        r.body["model"] for r in upstream.requests[since:] if isinstance(r.body, dict)
    }


def test_every_worker_of_the_host_sees_a_change_at_once(relay_with, upstream):
    relay = relay_with(workers=2)
    create(relay, upstream, "first")
    assert asked(relay, upstream) == ([200] * 10, {"first"})
    create(relay, upstream, "second")
    assert asked(relay, upstream) == ([200] * 10, {"second"})
    assert (
        requests.delete(relay.url + "/api/delete", json={"model": "cached"}, timeout=10).status_code
        == 200
    )
    assert asked(relay, upstream)[0] == [404] * 10


def test_signal_files_an_earlier_version_left_empty_still_signal(relay_with, upstream, tmp_path):
    """The earlier version touched empty `.changed-*` files; this one keeps a
    count in them. An instance directory upgraded in place still tells every
    worker of the host at once."""
    instance = tmp_path / "instance"  # relay_with's RELAY_INSTANCE_PATH
    instance.mkdir()
    for name in ("models", "keys"):
        (instance / f".changed-{name}").touch()
    relay = relay_with(workers=2)
    create(relay, upstream, "first")
    assert asked(relay, upstream) == ([200] * 10, {"first"})
    create(relay, upstream, "second")
    assert asked(relay, upstream) == ([200] * 10, {"second"})


def within_the_bound(check):
    deadline = time.monotonic() + BOUND_SECONDS + SLACK_SECONDS
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)
    return check()


@pytest.mark.server
def test_another_host_sees_a_change_within_a_second(tmp_path, upstream):
    database = f"sqlite:///{tmp_path}/shared.sqlite3"
    hosts = []
    try:
        for name in ("one", "two"):
            workdir = tmp_path / name
            workdir.mkdir()
            hosts.append(GunicornServer(relay_settings(workdir, database), workdir))
        one, two = hosts
        create(one, upstream, "first")
        assert asked(two, upstream) == ([200] * 10, {"first"})  # new: at once
        create(one, upstream, "second")
        assert within_the_bound(lambda: asked(two, upstream) == ([200] * 10, {"second"}))
        requests.delete(one.url + "/api/delete", json={"model": "cached"}, timeout=10)
        assert within_the_bound(lambda: asked(two, upstream)[0] == [404] * 10)
    finally:
        for host in hosts:
            host.stop()
