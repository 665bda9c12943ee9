"""remote_host policy (RELAY_REMOTE_ALLOWLIST) at create time."""
import socket

import pytest

from app.remotes.policy import RemoteHostPolicy, RemoteHostRefused

BASE = {"name": "m", "from": "gpt-4o", "remote_type": "openai", "stream": False}


def create(client, url):
    return client.post("/api/create", json=dict(BASE, remote_host=url))


@pytest.mark.parametrize("url", [
    "https://169.254.169.254/latest/meta-data",
    "https://127.0.0.1:8443/v1",
    "https://localhost/v1",
    "https://10.0.0.5/v1",
    "https://172.16.3.4/v1",
    "https://192.168.1.10/v1",
    "https://100.64.0.1/v1",
    "https://[::1]/v1",
    "https://[fe80::1]/v1",
    "https://[::ffff:169.254.169.254]/v1",
    "https://0.0.0.0/v1",
])
def test_private_addresses_are_refused(make_app, url):
    response = create(make_app(RELAY_REMOTE_ALLOWLIST="").test_client(), url)
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert "RELAY_REMOTE_ALLOWLIST" in message
    assert "loopback, private or link-local" in message


def test_plain_http_is_refused(make_app):
    response = create(make_app(RELAY_REMOTE_ALLOWLIST="").test_client(),
                      "http://api.openai.com/v1")
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert "only https://" in message and "RELAY_REMOTE_ALLOWLIST" in message


def test_nothing_is_stored_when_refused(make_app):
    client = make_app(RELAY_REMOTE_ALLOWLIST="").test_client()
    create(client, "https://169.254.169.254/")
    assert client.get("/api/tags").get_json() == {"models": []}


@pytest.mark.parametrize("url", [
    "http://10.1.2.3:8000/v1",            # inside an allowlisted CIDR, plain http
    "http://vllm.internal/v1",            # an allowlisted name
    "https://[fd00::5]/v1",               # inside an allowlisted IPv6 CIDR
])
def test_allowlist_admits_internal_hosts(make_app, url):
    app = make_app(RELAY_REMOTE_ALLOWLIST="10.0.0.0/8, vllm.internal,fd00::/8")
    response = create(app.test_client(), url)
    assert response.status_code == 200, response.get_json()


def test_allowlist_does_not_admit_neighbours(make_app):
    app = make_app(RELAY_REMOTE_ALLOWLIST="10.0.0.0/8,vllm.internal")
    client = app.test_client()
    assert create(client, "http://192.168.0.2/v1").status_code == 400
    assert create(client, "http://other.internal/v1").status_code == 400


def test_public_https_host_that_does_not_resolve_here_is_accepted(make_app):
    # Behind a corporate proxy only the proxy resolves public names.
    response = create(make_app(RELAY_REMOTE_ALLOWLIST="").test_client(),
                      "https://dashscope.aliyuncs.com/compatible-mode/v1")
    assert response.status_code == 200


def dns(answers):
    """A resolver answering from a table, like getaddrinfo."""
    def resolve(host, port, proto=0):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, proto, "", (ip, 0)) for ip in answers[host]]
    return resolve


def test_a_name_resolving_to_a_private_address_is_refused():
    policy = RemoteHostPolicy(resolver=dns({"intranet.example.com": ["93.184.215.14", "10.0.0.7"]}))
    with pytest.raises(RemoteHostRefused, match="10.0.0.7"):
        policy.check("https://intranet.example.com/v1")


def test_a_name_resolving_to_public_addresses_is_accepted():
    policy = RemoteHostPolicy(resolver=dns({"api.example.com": ["93.184.215.14"]}))
    policy.check("https://api.example.com/v1")


def test_a_cidr_allowlist_admits_names_resolving_inside_it():
    policy = RemoteHostPolicy(["10.0.0.0/8"], resolver=dns({"llm.corp": ["10.3.0.9"]}))
    policy.check("http://llm.corp:8000/v1")
