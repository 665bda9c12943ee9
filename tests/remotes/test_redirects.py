"""Remotes are never followed through redirects.

A remote the policy allowed could answer `307 Location: http://10.0.0.1/`
(or 169.254.169.254): following it would hand an internal service's answer
to the client and, with Azure remotes, the `api-key` header to that service.
Each test puts a second fake upstream behind the Location: zero requests
recorded there proves nothing went to it.
"""

import re
import socket

import pytest
import requests

from app import config, create_app
from app.errors import UpstreamError
from app.remotes.http.client import RemoteHTTP
from app.remotes.openai import OpenAIRemote
from app.remotes.policy import RemoteHostPolicy
from tests.support.cli import cli_in
from tests.support.config import GATEWAY_KEY, relay_settings
from tests.support.fake_upstream import FakeUpstream, Reply

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
AZURE = "myres.openai.azure.com"
AZURE_KEY = "azure-key-0123456789abcdef"


@pytest.fixture(scope="module")
def target_server():
    server = FakeUpstream()
    yield server
    server.close()


@pytest.fixture
def target(target_server):
    """Where the redirects point: nothing may ever reach it."""
    target_server.reset()
    yield target_server
    assert target_server.requests == [], "a redirect was followed"


def redirect(location, status=307):
    return Reply(status=status, headers={"Location": location}, json={"error": "moved"})


def message(target_origin, status=307):
    return (
        f"remote_host redirects to {target_origin} (HTTP {status}): "
        f"set remote_host to the final URL"
    )


def call(relay, surface, model, stream):
    if surface == "v1":
        response = requests.post(
            relay.url + "/v1/chat/completions",
            timeout=30,
            json={"model": model, "stream": stream, **CHAT},
        )
        assert response.headers["Content-Type"].startswith("application/json")
        error = response.json()["error"]
        assert error["type"] == "api_error"
        return response.status_code, error["message"]
    response = requests.post(
        relay.url + "/api/chat", timeout=30, json={"model": model, "stream": stream, **CHAT}
    )
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    return response.status_code, body["error"]


def redirect_count(relay, remote):
    """relay_upstream_requests_total{remote_host=remote, outcome="redirect"}."""
    total = 0.0
    for line in requests.get(relay.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("relay_upstream_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if labels == {"remote_host": remote, "outcome": "redirect"}:
                total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("remote_type,path", [("openai", "/v1"), ("ollama", "")])
@pytest.mark.parametrize("surface", ["v1", "api"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_redirect_is_a_502_naming_where_it_points(
    gateway, remote_model, upstream, target, remote_type, path, surface, stream
):
    model = remote_model(f"moved-{remote_type}", remote_type=remote_type, path=path)
    before = redirect_count(gateway, upstream.url)
    # Credentials and a query in the Location never reach the message.
    upstream.reply(redirect(f"http://user:pw@127.0.0.1:{target.port}/v1/chat?token=s3cret"))
    status, text = call(gateway, surface, model, stream)
    assert (status, text) == (502, message(target.url))
    assert len(upstream.requests) == 1
    assert redirect_count(gateway, upstream.url) == before + 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_redirect_status_is_refused(gateway, remote_model, upstream, target, status):
    model = remote_model("moved-any")
    upstream.reply(redirect(f"{target.url}/v1/chat/completions", status=status))
    assert call(gateway, "v1", model, False) == (502, message(target.url, status))


def test_a_relative_location_names_the_remotes_own_origin(gateway, remote_model, upstream):
    model = remote_model("moved-here")
    upstream.reply(redirect("/elsewhere/v1/chat/completions?sig=abc"))
    assert call(gateway, "api", model, False) == (502, message(upstream.url))
    assert len(upstream.requests) == 1


def test_the_azure_api_key_never_reaches_the_redirect_target(upstream, target):
    # In-process client; the policy's resolver puts the Azure name on
    # loopback, and the connection goes where the policy resolved it.
    policy = RemoteHostPolicy(
        [AZURE],
        resolver=lambda host, port, proto=0: [
            (socket.AF_INET, socket.SOCK_STREAM, proto, "", ("127.0.0.1", 0))
        ],
    )
    http = RemoteHTTP(
        config.load({"RELAY_CONNECT_TIMEOUT": 5, "RELAY_READ_TIMEOUT": 10}, environ={}), policy
    )
    remote = OpenAIRemote(
        http,
        f"http://{AZURE}:{upstream.port}/openai/deployments/gpt-4o",
        AZURE_KEY,
        azure_api_version="2024-10-21",
    )
    upstream.reply(redirect(f"{target.url}/collect"))
    with pytest.raises(UpstreamError) as raised:
        remote.chat(dict(CHAT, model="gpt-4o"))
    assert raised.value.status == 502
    assert raised.value.message == message(target.url)
    (sent,) = upstream.requests
    assert sent.headers["host"] == f"{AZURE}:{upstream.port}"
    assert sent.headers["api-key"] == AZURE_KEY


def test_the_azure_api_key_is_not_sent_on_through_the_outbound_proxy(relay_with, upstream, target):
    # The fake upstream doubles as the outbound HTTP proxy (as in
    # test_upstream_failures): following would send the key through it again.
    relay = relay_with(
        workers=1, RELAY_OUTBOUND_PROXY=upstream.url, RELAY_REMOTE_ALLOWLIST=f"127.0.0.1,{AZURE}"
    )
    created = requests.post(
        relay.url + "/api/create",
        timeout=30,
        json={
            "name": "azure",
            "from": "gpt-4o",
            "remote_type": "openai",
            "stream": False,
            "remote_host": f"http://{AZURE}/openai/deployments/gpt-4o",
            "remote_api_key": AZURE_KEY,
        },
    )
    assert created.status_code == 200, created.text
    upstream.reply(redirect(f"{target.url}/collect"), redirect(f"{target.url}/collect"))
    for stream in (False, True):
        assert call(relay, "v1", "azure", stream) == (502, message(target.url))
    assert [r.host for r in upstream.requests] == [AZURE, AZURE]
    assert AZURE_KEY not in relay.log()


def test_check_reports_a_redirecting_remote(tmp_path, upstream, target):
    # In this process (Flask's test_cli_runner), on an app of its own; no
    # output, log lines included, may hold the key.
    app = create_app(relay_settings(tmp_path, f"sqlite:///{tmp_path}/cli.sqlite3"))
    run = cli_in(app, secrets=(GATEWAY_KEY,), env={"CLI_TEST_KEY": GATEWAY_KEY})
    run(
        "models",
        "create",
        "m",
        "--from",
        "remote-model",
        "--remote-host",
        upstream.url + "/v1",
        "--api-key-env",
        "CLI_TEST_KEY",
    )
    upstream.reset()
    upstream.reply(redirect(f"{target.url}/v1/models"))
    result = run("check", expect=1)
    assert f"FAIL\tmodel 'm:latest': {message(target.url)}" in result.stdout.splitlines()
    assert GATEWAY_KEY not in result.stdout + result.stderr
