"""Each worker keeps the models in memory: what a change elsewhere costs.

README's bound: a model replaced or deleted on one worker is served as it
was for at most 1 second on the others; a new model works at once.
Two gevent workers under gunicorn, fresh connections so requests reach both.
"""
import time

import requests

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
BOUND_SECONDS = 1.0
SLACK_SECONDS = 1.0  # a loaded CI machine: the bound plus this, then fail


def create(relay, upstream, remote_model):
    response = requests.post(relay.url + "/api/create", timeout=10, json={
        "name": "cached", "from": remote_model, "remote_type": "openai",
        "remote_host": upstream.url + "/v1"})
    assert response.status_code == 200, response.text


def ask(relay):
    with requests.Session() as fresh:  # a new connection: either worker
        return fresh.post(relay.url + "/v1/chat/completions", timeout=10,
                          json={"model": "cached", **CHAT})


def remote_models_asked(upstream, since):
    return {r.body["model"] for r in upstream.requests[since:] if isinstance(r.body, dict)}


def test_new_replaced_and_deleted_models_reach_every_worker(relay_with, upstream):
    relay = relay_with(workers=2)
    create(relay, upstream, "first")
    # New: at once, on whichever worker.
    assert [ask(relay).status_code for _ in range(10)] == [200] * 10
    assert remote_models_asked(upstream, 0) == {"first"}

    create(relay, upstream, "second")
    changed = time.monotonic()
    while time.monotonic() - changed < BOUND_SECONDS + SLACK_SECONDS:
        since = len(upstream.requests)
        statuses = [ask(relay).status_code for _ in range(10)]
        if remote_models_asked(upstream, since) == {"second"}:
            break
        time.sleep(0.1)
    assert statuses == [200] * 10
    assert remote_models_asked(upstream, since) == {"second"}, "a worker kept the old model"

    assert requests.delete(relay.url + "/api/delete", json={"model": "cached"},
                           timeout=10).status_code == 200
    deleted = time.monotonic()
    while time.monotonic() - deleted < BOUND_SECONDS + SLACK_SECONDS:
        statuses = [ask(relay).status_code for _ in range(10)]
        if statuses == [404] * 10:
            break
        time.sleep(0.1)
    assert statuses == [404] * 10, "a worker still served the deleted model"
