"""What a client was answered is stored, at once and for good: readable from
either worker right after the answer, kept when the worker that answered is
killed, on SQLite and PostgreSQL."""

import json
import os
import signal
import time

import pytest
import requests

from tests.support.models import create_model


@pytest.fixture
def model(relay, upstream):
    create_model(relay, "remote", upstream.url + "/v1")
    return "remote"


def _workers(relay):
    children = f"/proc/{relay.process.pid}/task/{relay.process.pid}/children"
    with open(children) as handle:
        return {int(pid) for pid in handle.read().split()}


def _fresh(method, url, **kwargs):
    # A new connection each time: gunicorn hands it to either worker.
    with requests.Session() as session:
        return session.request(method, url, timeout=60, **kwargs)


def _stream_until_completed(relay, **body):
    """The id of a streamed response, read up to its response.completed event."""
    with requests.Session() as session:
        answer = session.post(
            relay.url + "/v1/responses",
            json={"model": "remote", "stream": True, **body},
            stream=True,
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        for line in answer.iter_lines():
            if line.startswith(b"data: "):
                event = json.loads(line[6:])
                if event["type"] == "response.completed":
                    answer.close()
                    return event["response"]["id"]
    raise AssertionError("the stream ended without response.completed")


def test_each_response_is_readable_from_either_worker_right_after_its_answer(relay, model):
    previous = None
    for turn in range(40):
        stream = turn % 2 == 1
        body = {"input": f"turn {turn}"}
        if stream:
            response_id = _stream_until_completed(relay, **body)
        else:
            created = _fresh("POST", relay.url + "/v1/responses", json={"model": "remote", **body})
            assert created.status_code == 200, created.text
            response_id = created.json()["id"]
        fetched = _fresh("GET", f"{relay.url}/v1/responses/{response_id}")
        assert fetched.status_code == 200, (turn, fetched.text)
        assert fetched.json()["id"] == response_id
        if previous:
            follow = _fresh(
                "POST",
                relay.url + "/v1/responses",
                json={"model": "remote", "input": "and?", "previous_response_id": previous},
            )
            assert follow.status_code == 200, (turn, follow.text)
        previous = response_id


def _respawned(relay, killed, deadline=60):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        workers = _workers(relay)
        if len(workers) == 2 and not workers & killed:
            try:
                if _fresh("GET", relay.url + "/readyz").status_code == 200:
                    return
            except requests.RequestException:
                pass
        time.sleep(0.1)
    raise AssertionError("gunicorn did not replace its killed workers")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_response_answered_then_killed_with_its_worker_is_kept(relay, model, stream):
    kept = []
    for turn in range(3):
        if stream:
            response_id = _stream_until_completed(relay, input=f"turn {turn}")
        else:
            created = _fresh(
                "POST", relay.url + "/v1/responses", json={"model": "remote", "input": "hi"}
            )
            assert created.status_code == 200, created.text
            response_id = created.json()["id"]
        # Whichever worker answered dies at once, without a chance to write anything more.
        killed = _workers(relay)
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        kept.append(response_id)
        _respawned(relay, killed)
    for response_id in kept:
        fetched = _fresh("GET", f"{relay.url}/v1/responses/{response_id}")
        assert fetched.status_code == 200, fetched.text
        follow = _fresh(
            "POST",
            relay.url + "/v1/responses",
            json={"model": "remote", "input": "and?", "previous_response_id": response_id},
        )
        assert follow.status_code == 200, follow.text
