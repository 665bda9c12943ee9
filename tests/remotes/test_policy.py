"""remote_host policy (RELAY_REMOTE_ALLOWLIST): at create time, and on the
address each connection to a remote is opened to (DNS rebinding)."""

import socket
import ssl

import pytest
import requests
import trustme

from app import config
from app.errors import UpstreamError
from app.remotes.http.client import RemoteHTTP
from app.remotes.policy import RemoteHostPolicy, RemoteHostRefused
from tests.support.fake_upstream import FakeUpstream
from tests.support.models import create_model

BASE = {"name": "m", "from": "gpt-4o", "remote_type": "openai", "stream": False}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def create(client, url):
    return create_model(client, remote_host=url, expect=None, **BASE)


@pytest.mark.parametrize(
    "url",
    [
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
    ],
)
def test_private_addresses_are_refused(make_app, url):
    response = create(make_app(RELAY_REMOTE_ALLOWLIST="").test_client(), url)
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert "RELAY_REMOTE_ALLOWLIST" in message
    assert "loopback, private or link-local" in message


def test_plain_http_is_refused(make_app):
    response = create(make_app(RELAY_REMOTE_ALLOWLIST="").test_client(), "http://api.openai.com/v1")
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert "only https://" in message and "RELAY_REMOTE_ALLOWLIST" in message


def test_nothing_is_stored_when_refused(make_app):
    client = make_app(RELAY_REMOTE_ALLOWLIST="").test_client()
    create(client, "https://169.254.169.254/")
    assert client.get("/api/tags").get_json() == {"models": []}


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3:8000/v1",  # inside an allowlisted CIDR, plain http
        "http://vllm.internal/v1",  # an allowlisted name
        "https://[fd00::5]/v1",  # inside an allowlisted IPv6 CIDR
    ],
)
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
    response = create(
        make_app(RELAY_REMOTE_ALLOWLIST="").test_client(),
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
    )
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


# --- checked where the connection is made ------------------------------------
# The policy's resolver is the only one a direct connection uses: the tests
# give it names that no DNS knows and point them at fake upstreams on loopback.

HTTP_SETTINGS = config.load(
    {
        "RELAY_CONNECT_TIMEOUT": 5,
        "RELAY_READ_TIMEOUT": 10,
        "RELAY_OUTBOUND_PROXY": "",
        "RELAY_CA_BUNDLE": "",
    },
    environ={},
)
NAME = "api.rebind.test"


def rebinding(first, then):
    """A resolver answering `first` once, then `then`: a DNS-rebinding attacker."""
    answers = []

    def resolve(host, port, proto=0):
        ip = first if not answers else then
        answers.append((host, ip))
        return [(socket.AF_INET, socket.SOCK_STREAM, proto, "", (ip, 0))]

    resolve.answers = answers
    return resolve


def chat(http, url):
    return http.request("POST", url + "/v1/chat/completions", json={"messages": []})


@pytest.fixture(scope="module")
def named_tls_upstream(tmp_path_factory):
    """A TLS fake upstream on 127.0.0.1 whose certificate is for NAME only."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME).configure_cert(context)
    ca_file = tmp_path_factory.mktemp("named-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = FakeUpstream(ssl_context=context)
    yield server, str(ca_file)
    server.close()


@pytest.fixture
def named(named_tls_upstream):
    server, ca_file = named_tls_upstream
    server.reset()
    return server, ca_file


def test_check_without_resolving_decides_only_what_the_url_says():
    def no_dns(*args, **kwargs):
        raise AssertionError("looked up")

    policy = RemoteHostPolicy(["vllm.internal"], resolver=no_dns)
    policy.check("https://api.example.com/v1", resolve=False)
    policy.check("http://vllm.internal/v1", resolve=False)
    with pytest.raises(RemoteHostRefused, match="only https://"):
        policy.check("http://api.example.com/v1", resolve=False)
    with pytest.raises(RemoteHostRefused, match="169.254.169.254"):
        policy.check("https://169.254.169.254/", resolve=False)
    # A CIDR may admit plain http to a name once it resolves: left to the connection.
    RemoteHostPolicy(["10.0.0.0/8"], resolver=no_dns).check("http://llm.corp/v1", resolve=False)


def test_approve_checks_every_address_a_name_has():
    policy = RemoteHostPolicy(resolver=dns({NAME: ["93.184.215.14", "10.0.0.7"]}))
    with pytest.raises(RemoteHostRefused, match="10.0.0.7"):
        policy.approve("https", NAME)
    policy = RemoteHostPolicy(["10.0.0.0/8"], resolver=dns({NAME: ["10.0.0.7", "10.1.0.7"]}))
    assert [str(a) for a in policy.approve("http", NAME)] == ["10.0.0.7", "10.1.0.7"]
    with pytest.raises(socket.gaierror):
        policy.approve("https", "nowhere.invalid")


def test_a_name_rebound_to_a_private_address_is_refused_when_connecting(upstream):
    resolver = rebinding("93.184.215.14", "127.0.0.1")
    policy = RemoteHostPolicy(resolver=resolver)
    url = f"https://{NAME}:{upstream.port}"
    policy.check(url + "/v1")  # at create time: a public address
    http = RemoteHTTP(HTTP_SETTINGS, policy)
    for _ in range(3):
        with pytest.raises(UpstreamError) as raised:
            chat(http, url)
        assert raised.value.status == 502
        assert raised.value.message == (
            f"remote_host '{NAME}' is 127.0.0.1, a loopback, private or link-local address: "
            f"refused unless listed in RELAY_REMOTE_ALLOWLIST (checked again before calling it)"
        )
    assert upstream.requests == []
    # Each refused connection was looked up once, and gave its pool slot back.
    assert len(resolver.answers) == 1 + 3
    pool = http._route(url).pool
    assert pool.pool.qsize() == pool.pool.maxsize


def test_the_connection_goes_to_the_approved_address_with_tls_for_the_name(named):
    server, ca_file = named
    resolver = rebinding("127.0.0.1", "127.0.0.1")
    http = RemoteHTTP(
        dict(HTTP_SETTINGS, RELAY_CA_BUNDLE=ca_file),
        RemoteHostPolicy(["127.0.0.1"], resolver=resolver),
    )
    url = f"https://{NAME}:{server.port}"
    for _ in range(3):
        response = chat(http, url)
        assert response.status_code == 200
        response.close()
    # The certificate (for the name, not the address) was verified, the Host
    # header names the host, and the kept-alive connection was not looked up again.
    assert [r.headers["host"] for r in server.requests] == [f"{NAME}:{server.port}"] * 3
    assert len({r.peer for r in server.requests}) == 1
    assert resolver.answers == [(NAME, "127.0.0.1")]


def test_the_certificate_is_checked_against_the_name_not_the_address(tls_upstream):
    server, ca_file = tls_upstream  # its certificate is for 127.0.0.1 only
    http = RemoteHTTP(
        dict(HTTP_SETTINGS, RELAY_CA_BUNDLE=ca_file),
        RemoteHostPolicy(["127.0.0.1"], resolver=dns({NAME: ["127.0.0.1"]})),
    )
    with pytest.raises(UpstreamError, match="certificate verify failed"):
        chat(http, f"https://{NAME}:{server.port}")


def test_the_address_not_the_name_is_what_the_relay_checks(relay_with, upstream):
    """End to end: localhost is loopback whatever its name says."""
    url = f"http://localhost:{upstream.port}/v1"
    by_name = relay_with(RELAY_REMOTE_ALLOWLIST="localhost")
    created = requests.post(
        by_name.url + "/api/create",
        timeout=30,
        json=dict(BASE, remote_host=url, remote_api_key="sk-pinning-test"),
    )
    assert created.status_code == 200, created.text
    by_name.stop()

    # Same database; the allowlist names another loopback address.
    other = relay_with(RELAY_REMOTE_ALLOWLIST="127.0.0.2")
    for path in ("/v1/chat/completions", "/api/chat"):
        response = requests.post(
            other.url + path, timeout=30, json={"model": "m", "stream": False, **CHAT}
        )
        assert response.status_code == 502, response.text
        assert "'localhost' is 127.0.0.1" in response.text
        assert "checked again before calling it" in response.text
    metrics = requests.get(other.url + "/metrics", timeout=10).text
    assert 'outcome="refused_by_policy"' in metrics
    other.stop()
    assert upstream.requests == []

    allowed = relay_with(RELAY_REMOTE_ALLOWLIST="127.0.0.1")
    response = requests.post(
        allowed.url + "/v1/chat/completions", timeout=30, json={"model": "m", **CHAT}
    )
    assert response.status_code == 200, response.text
    assert upstream.last.headers["host"] == f"localhost:{upstream.port}"
