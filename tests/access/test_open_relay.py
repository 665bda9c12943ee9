"""Issue 18, holes 1, 11 and 12: who an open relay answers, and who may read
/metrics. Raw requests over real sockets, to the relay under gunicorn."""

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.support.access import ADMIN_TOKEN, create_key
from tests.support.paths import ROOT
from tests.support.servers import free_port

METRICS_TOKEN = "metrics-TOKEN-5b8e21c4f9a07d36"


def raw_get(port, head, address="127.0.0.1", path="/api/tags"):
    """(status, body) of a GET whose request line and headers are `head`
    (a str with {path}); sent as bytes, so malformed headers go as they are."""
    with socket.create_connection((address, port), timeout=30) as sock:
        sock.sendall((head.format(path=path) + "\r\n").encode("latin-1"))
        data = b""
        while True:
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1].decode("utf-8", "replace")


def get_with_host(port, host):
    line = "GET {path} HTTP/1.1\r\n"
    if host is not None:
        line += f"Host: {host}\r\n"
    return raw_get(port, line + "Connection: close\r\n")


# --- hole 1: the Host check judges the raw header ----------------------------


HOSTILE_HOSTS = (
    "x_y.rebind.attacker.example:{port}",
    "evil.com:1:2",
    "localhost:80@evil.com",
    "evil.com, localhost",
    "",
    None,  # HTTP/1.1 without Host
    "evil.com",
)


def test_an_open_relay_refuses_every_host_that_is_not_loopback(relay_with):
    relay = relay_with()
    port = relay.port
    for host in HOSTILE_HOSTS:
        for path in ("/api/tags", "/api/ps", "/v1/models"):
            line = "GET {path} HTTP/1.1\r\n".replace("{path}", path)
            if host is not None:
                line += f"Host: {host.format(port=port)}\r\n"
            status, body = raw_get(port, line + "Connection: close\r\n")
            assert status == 403, (host, path, body)
            assert "RELAY_ALLOWED_HOSTS" in body and '"models"' not in body


def test_an_open_relay_answers_loopback_hosts_and_listed_ones(relay_with):
    relay = relay_with(RELAY_ALLOWED_HOSTS="relay.internal")
    port = relay.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
        assert get_with_host(port, host)[0] == 200, host
    assert get_with_host(port, f"relay.internal:{port}")[0] == 200
    assert get_with_host(port, "relay.internal.evil.com")[0] == 403


# --- hole 11: an open relay answers its own machine only ---------------------


def _outside_address():
    """An address of this machine that is not loopback (None if it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.fixture
def bare_gunicorn(tmp_path):
    """start(**env): `gunicorn -k gevent --bind 0.0.0.0:PORT wsgi:app`, no -c:
    the start-up refusal of ops/gunicorn.conf.py does not run."""
    started = []

    def start(**env):
        port = free_port()
        settings = {
            "RELAY_DATABASE_URL": f"sqlite:///{tmp_path}/relay.sqlite3",
            "RELAY_INSTANCE_PATH": str(tmp_path / "instance"),
            **env,
        }
        log = open(tmp_path / f"gunicorn-{port}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "gevent", "--bind", f"0.0.0.0:{port}"]
            + ["wsgi:app"],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "RELAY_ADMIN_TOKEN"} | settings,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append((process, log))
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).ok:
                    return port
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    yield start
    for process, log in started:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_an_open_relay_refuses_a_peer_that_is_not_loopback(bare_gunicorn):
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no address but loopback")
    port = bare_gunicorn()
    status, body = get_with_host(port, f"127.0.0.1:{port}")
    assert status == 200, body
    head = f"GET {{path}} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    status, body = raw_get(port, head, address=outside)
    assert status == 403, body
    assert "RELAY_ADMIN_TOKEN" in body and "RELAY_ALLOW_UNAUTHENTICATED" in body
    assert '"models"' not in body


def test_an_open_relay_serves_the_network_when_told_to(bare_gunicorn):
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no address but loopback")
    port = bare_gunicorn(RELAY_ALLOW_UNAUTHENTICATED="1", RELAY_ALLOWED_HOSTS=outside)
    status, body = raw_get(
        port, f"GET {{path}} HTTP/1.1\r\nHost: {outside}:{port}\r\nConnection: close\r\n", outside
    )
    assert status == 200, body


def test_a_client_behind_a_proxy_is_judged_by_its_own_address(bare_gunicorn):
    """Behind nginx (RELAY_TRUSTED_PROXIES=1) the peer is the client nginx
    names, not nginx on loopback."""
    port = bare_gunicorn(RELAY_TRUSTED_PROXIES="1")
    head = (
        f"GET {{path}} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"X-Forwarded-For: {{client}}\r\nConnection: close\r\n"
    )
    status, body = raw_get(port, head.replace("{client}", "203.0.113.9"))
    assert status == 403 and "RELAY_ADMIN_TOKEN" in body, body
    assert raw_get(port, head.replace("{client}", "127.0.0.1"))[0] == 200


# --- hole 12: /metrics ---------------------------------------------------------


def metrics_from(relay, client, token=None):
    """GET /metrics as nginx would pass it on for `client` (X-Forwarded-For)."""
    headers = {"X-Forwarded-For": client}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(relay.url + "/metrics", headers=headers, timeout=10)


def test_metrics_need_a_token_from_afar(relay_with):
    relay = relay_with(
        RELAY_ADMIN_TOKEN=ADMIN_TOKEN, RELAY_METRICS_TOKEN=METRICS_TOKEN, RELAY_TRUSTED_PROXIES="1"
    )
    _, key = create_key(relay, "client-key")
    outside = "203.0.113.9"
    for token in (None, "wrong-token-0123456789", key):
        answer = metrics_from(relay, outside, token)
        assert answer.status_code == 401, (token, answer.text[:200])
        assert "relay_requests_total" not in answer.text
        assert "RELAY_METRICS_TOKEN" in answer.json()["error"]
    for token in (METRICS_TOKEN, ADMIN_TOKEN):
        answer = metrics_from(relay, outside, token)
        assert answer.status_code == 200 and "relay_requests_total" in answer.text
    # This machine (a local Prometheus or agent) needs none.
    assert metrics_from(relay, "127.0.0.1").status_code == 200
    assert requests.get(relay.url + "/metrics", timeout=10).status_code == 200
    # The token never reaches the log.
    assert METRICS_TOKEN not in relay.log()
