"""What the access tests share: a relay under gunicorn kept for a module, keys,
clients with keys, log and metrics readers, and the `ollama-relay` CLI."""

import json
import re
import time
import uuid

import ollama
import openai
import requests

from tests.support.cli import cli_process
from tests.support.config import relay_settings
from tests.support.models import create_model
from tests.support.servers import GunicornServer

ADMIN_TOKEN = "relay-admin-TOKEN-7c1e9b24d0a35f86"
# The providers' key the relay keeps for its models: it must never show.
REMOTE_KEY = "sk-access-REMOTE-a9f3c2e1d4b5"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# What the admin sees of a key (GET /api/keys, keys list --json): never its secret or hash.
KEY_FIELDS = {
    "name",
    "models",
    "rpm",
    "tpm",
    "expires",
    "created_at",
    "last_used_at",
    "revoked",
    "team",
    "budget",
    "period",
    "capture",
}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def start_relay(workdir, **settings):
    """A relay under gunicorn with two gevent workers; its settings are `.settings`."""
    full = relay_settings(workdir, **settings)
    server = GunicornServer(full, workdir, workers=2)
    server.settings = full
    return server


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def model_for(relay, upstream_url, name, headers=ADMIN):
    """A model on `relay` (created by the admin) calling `upstream_url` with REMOTE_KEY."""
    create_model(relay, name, upstream_url + "/v1", headers=headers, remote_api_key=REMOTE_KEY)
    return name


def create_key(relay, name=None, headers=ADMIN, **fields):
    """A client key made by the admin over HTTP: (name, secret)."""
    name = name or unique("key")
    for _ in range(5):
        response = requests.post(
            relay.url + "/api/keys", headers=headers, timeout=10, json={"name": name, **fields}
        )
        # On SQLite a creation racing another worker's write fails with 503
        # (test_keys_made_in_parallel_are_all_made shows it): not what these tests test.
        if response.status_code != 503:
            break
    assert response.status_code == 200, response.text
    return name, response.json()["key"]


def sdk(relay, key):
    return openai.OpenAI(base_url=relay.url + "/v1/", api_key=key, max_retries=0)


def ollama_client(relay, key=None):
    headers = bearer(key) if key else None
    return ollama.Client(host=relay.url, headers=headers)


def tag_names(relay, headers=ADMIN):
    response = requests.get(relay.url + "/api/tags", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return [m["name"] for m in response.json()["models"]]


def status_with(relay, key, path="/api/tags"):
    """The status of a request with `key`, on a fresh connection (any worker)."""
    return requests.get(relay.url + path, headers=bearer(key), timeout=10).status_code


def until(predicate, what, deadline=20):
    """Poll `predicate` until it is true; fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {deadline}s: {what}")


def accepted_everywhere(relay, key, path="/api/tags", in_a_row=10):
    """True when `in_a_row` requests on fresh connections were all answered 200."""
    return all(status_with(relay, key, path) == 200 for _ in range(in_a_row))


def refused_everywhere(relay, key, path="/api/tags", in_a_row=10):
    """True once `in_a_row` requests on fresh connections (so reaching
    either worker) were all refused with 401."""
    return all(status_with(relay, key, path) == 401 for _ in range(in_a_row))


def log_lines(relay):
    return json_lines(relay.log())


def audit_lines(relay, obj=None):
    return [
        line
        for line in log_lines(relay)
        if line.get("audit") is True and (obj is None or line.get("object") == obj)
    ]


def metric(text, name, **labels):
    """The sum of the samples of `name` with `labels` in Prometheus text format."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("} ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def cli_runner(settings, secrets=()):
    """run(*args, expect=0): `ollama-relay` with the relay's RELAY_* settings, in
    a process of its own; no output may hold the admin token, the providers'
    key, one of `secrets`, or a traceback."""
    return cli_process(settings, secrets=(ADMIN_TOKEN, REMOTE_KEY, *secrets))


def json_lines(text):
    return [json.loads(raw) for raw in text.splitlines() if raw.startswith("{")]
