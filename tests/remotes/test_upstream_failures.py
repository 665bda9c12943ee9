"""Every way a remote can fail gets a distinct, clear error naming the host (never the key)."""

import socket

import requests

from tests.support.fake_upstream import Reply
from tests.support.models import create_model
from tests.support.servers import free_port

KEY = "sk-failure-test-key-987654"
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def create(relay, remote_host, name="m"):
    create_model(relay, name, remote_host, remote_api_key=KEY)
    return name


def both_surfaces(relay, model):
    """(status, message) from /v1/chat/completions and from /api/chat."""
    v1 = requests.post(relay.url + "/v1/chat/completions", json={"model": model, **CHAT})
    api = requests.post(relay.url + "/api/chat", json={"model": model, "stream": False, **CHAT})
    assert KEY not in v1.text and KEY not in api.text
    return (v1.status_code, v1.json()["error"]["message"]), (api.status_code, api.json()["error"])


def test_connection_refused(relay_with):
    relay = relay_with()
    host = f"http://127.0.0.1:{free_port()}"
    v1, api = both_surfaces(relay, create(relay, host + "/v1"))
    assert v1 == api == (502, f"{host} refused the connection")


def test_dns_failure(relay_with):
    relay = relay_with(RELAY_REMOTE_ALLOWLIST="127.0.0.1,no-such-host.invalid")
    v1, api = both_surfaces(relay, create(relay, "http://no-such-host.invalid/v1"))
    assert (
        v1
        == api
        == (502, "cannot resolve the remote host http://no-such-host.invalid (DNS lookup failed)")
    )


def test_connect_timeout(relay_with):
    # A listener whose backlog is full: the kernel drops further SYNs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    host = f"http://127.0.0.1:{listener.getsockname()[1]}"
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    relay = relay_with(RELAY_CONNECT_TIMEOUT="1")
    try:
        v1, api = both_surfaces(relay, create(relay, host + "/v1"))
    finally:
        for sock in fillers + [listener]:
            sock.close()
    assert v1 == api == (504, f"timed out connecting to {host} after 1s (RELAY_CONNECT_TIMEOUT)")


def test_read_timeout(relay_with, upstream):
    relay = relay_with(RELAY_READ_TIMEOUT="1")
    upstream.reply(Reply(delay=3, json={}), Reply(delay=3, json={}))
    v1, api = both_surfaces(relay, create(relay, upstream.url + "/v1"))
    assert v1 == api == (504, f"{upstream.url} sent nothing for 1s (RELAY_READ_TIMEOUT)")


def test_tls_failure_without_the_ca(relay_with, tls_upstream):
    server, _ = tls_upstream
    relay = relay_with()
    v1, api = both_surfaces(relay, create(relay, server.url + "/v1"))
    assert (
        v1
        == api
        == (
            502,
            f"TLS error talking to {server.url}: certificate verify failed "
            f"(a corporate CA bundle can be set with RELAY_CA_BUNDLE)",
        )
    )


def test_tls_works_with_the_corporate_ca_configured(relay_with, tls_upstream):
    server, ca_file = tls_upstream
    server.reset()
    relay = relay_with(workers=1, RELAY_CA_BUNDLE=ca_file)
    model = create(relay, server.url + "/v1")
    # The first call opens the connection, the second goes out on it again.
    for _ in range(2):
        response = requests.post(relay.url + "/v1/chat/completions", json={"model": model, **CHAT})
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == "Hello from upstream"
    first, second = server.requests
    assert first.peer == second.peer


def test_host_policy_is_checked_again_when_a_request_goes_out(relay_with, upstream):
    first = relay_with()
    model = create(first, upstream.url + "/v1")
    first.stop()
    # Same database; the operator has since removed loopback from the allowlist.
    second = relay_with(RELAY_REMOTE_ALLOWLIST="")
    (status, message), (api_status, _) = both_surfaces(second, model)
    assert status == api_status == 502
    assert "RELAY_REMOTE_ALLOWLIST" in message and "checked again" in message
    assert upstream.requests == []


def test_azure_deployment_url_gets_api_key_header_and_api_version(relay_with, upstream):
    # The fake upstream doubles as the outbound HTTP proxy, so the request
    # reaches it with the Azure host name intact.
    azure = "myres.openai.azure.com"
    relay = relay_with(
        RELAY_OUTBOUND_PROXY=upstream.url, RELAY_REMOTE_ALLOWLIST=f"127.0.0.1,{azure}"
    )
    model = create(relay, f"http://{azure}/openai/deployments/gpt-4o")
    response = requests.post(relay.url + "/v1/chat/completions", json={"model": model, **CHAT})
    assert response.status_code == 200, response.text
    sent = upstream.last
    assert sent.host == azure
    assert sent.path == "/openai/deployments/gpt-4o/chat/completions"
    assert sent.query == {"api-version": ["2024-10-21"]}
    assert sent.headers["api-key"] == KEY and "authorization" not in sent.headers

    model = create(
        relay, f"http://{azure}/openai/deployments/o3?api-version=2025-04-01-preview", name="o3"
    )
    requests.post(relay.url + "/v1/chat/completions", json={"model": model, **CHAT})
    assert upstream.last.query == {"api-version": ["2025-04-01-preview"]}


def test_upstream_connections_are_pooled(relay_with, upstream):
    relay = relay_with(workers=1)  # every call goes out from one pool
    model = create(relay, upstream.url + "/v1")
    for _ in range(3):
        requests.post(relay.url + "/v1/chat/completions", json={"model": model, **CHAT})
        requests.post(relay.url + "/api/chat", json={"model": model, "stream": False, **CHAT})
    assert len(upstream.requests) == 6
    assert len({r.peer for r in upstream.requests}) == 1
