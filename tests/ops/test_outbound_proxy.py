"""Going out through a corporate forward proxy: a real one (proxy.py from PyPI)
on loopback, in front of a TLS fake upstream whose certificate only our own CA
(trustme) signs, as behind a TLS-inspecting proxy.

requests on Linux does not exempt loopback from HTTPS_PROXY by itself: only
NO_PROXY does. So the upstream can stay at https://127.0.0.1:<port> and the
proxy's own access log tells whether it carried the call.
"""

import re
import signal
import subprocess
import sys
import time

import pytest
import requests

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
    "no_proxy",
)


class ForwardProxy:
    """`python -m proxy` (proxy.py) on a free loopback port, logging to a file.

    Its access log has one line per tunnel, written when the tunnel closes:
    `<client> - CONNECT <host>:<port> - <bytes> bytes - <ms>ms`.
    """

    def __init__(self, workdir):
        port_file = workdir / "proxy.port"
        self.log_path = workdir / "proxy.log"
        self._output = open(workdir / "proxy.out", "w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "--hostname",
                "127.0.0.1",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--log-file",
                str(self.log_path),
                "--log-level",
                "INFO",
                "--num-workers",
                "1",
                "--num-acceptors",
                "1",
                # Keep its certificate and cache directories out of $HOME.
                "--data-dir",
                str(workdir / "proxy-data"),
                "--cache-dir",
                str(workdir / "proxy-cache"),
            ],
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        end = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"proxy.py did not start: {self.output()}")
            time.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self):
        return (self.log_path.read_text() if self.log_path.exists() else "") + open(
            self._output.name
        ).read()

    def tunnels(self):
        """[(host:port, bytes)] for every CONNECT the proxy has finished."""
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return [
            (target, int(size))
            for target, size in re.findall(r" - CONNECT (\S+) - (\d+) bytes", text)
        ]

    def wait_for_tunnel(self, target, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = [t for t in self.tunnels() if t[0] == target]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"the proxy never tunnelled to {target}: {self.output()}")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._output.close()


@pytest.fixture
def forward_proxy(tmp_path):
    proxy = ForwardProxy(tmp_path)
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied_relay(relay_with, monkeypatch):
    """proxied_relay(env={...}, **settings): one gunicorn worker whose environment
    has exactly the proxy variables given in `env` and no others."""
    for name in PROXY_VARIABLES:
        # GunicornServer copies os.environ; an empty lowercase variable would
        # even cancel its uppercase twin (urllib's rule), so remove them all.
        monkeypatch.delenv(name, raising=False)
    return lambda env=None, **settings: relay_with(workers=1, env=env, **settings)


def chat(relay, upstream_url):
    created = requests.post(
        relay.url + "/api/create",
        timeout=30,
        json={
            "name": "corp",
            "from": "remote-model",
            "remote_type": "openai",
            "stream": False,
            "remote_host": upstream_url + "/v1",
            "remote_api_key": "sk-proxy-test-123456",
        },
    )
    assert created.status_code == 200, created.text
    return requests.post(
        relay.url + "/v1/chat/completions", timeout=60, json={"model": "corp", **CHAT}
    )


def target(upstream):
    return f"127.0.0.1:{upstream.port}"


def test_https_proxy_from_the_environment_with_the_corporate_ca(
    proxied_relay, forward_proxy, tls_upstream
):
    upstream, ca_file = tls_upstream
    relay = proxied_relay(
        env={"HTTPS_PROXY": forward_proxy.url, "NO_PROXY": ""}, RELAY_CA_BUNDLE=ca_file
    )
    response = chat(relay, upstream.url)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from upstream"
    relay.stop()  # closes the pooled tunnel: proxy.py logs a tunnel when it ends
    ((_, size),) = forward_proxy.wait_for_tunnel(target(upstream))
    assert size > 0


def test_outbound_proxy_setting_with_the_corporate_ca(proxied_relay, forward_proxy, tls_upstream):
    upstream, ca_file = tls_upstream
    relay = proxied_relay(RELAY_OUTBOUND_PROXY=forward_proxy.url, RELAY_CA_BUNDLE=ca_file)
    response = chat(relay, upstream.url)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from upstream"
    relay.stop()
    ((_, size),) = forward_proxy.wait_for_tunnel(target(upstream))
    assert size > 0


def test_through_the_proxy_without_the_ca_is_a_clear_tls_error(
    proxied_relay, forward_proxy, tls_upstream
):
    # The environment's REQUESTS_CA_BUNDLE (the system store, if set) does
    # not know the corporate CA, and no RELAY_CA_BUNDLE is given.
    upstream, _ = tls_upstream
    relay = proxied_relay(env={"HTTPS_PROXY": forward_proxy.url, "NO_PROXY": ""})
    response = chat(relay, upstream.url)
    assert response.status_code == 502, response.text
    assert response.json()["error"]["message"] == (
        f"TLS error talking to {upstream.url}: certificate verify failed "
        f"(a corporate CA bundle can be set with RELAY_CA_BUNDLE)"
    )
    # The handshake failed inside the proxy's tunnel, not on a direct line.
    forward_proxy.wait_for_tunnel(target(upstream))


@pytest.mark.parametrize("through", ["HTTPS_PROXY", "RELAY_OUTBOUND_PROXY"])
def test_no_proxy_bypasses_the_proxy(proxied_relay, forward_proxy, tls_upstream, through):
    upstream, ca_file = tls_upstream
    if through == "HTTPS_PROXY":
        relay = proxied_relay(
            env={"HTTPS_PROXY": forward_proxy.url, "NO_PROXY": "127.0.0.1"}, RELAY_CA_BUNDLE=ca_file
        )
    else:
        relay = proxied_relay(
            env={"NO_PROXY": "127.0.0.1"},
            RELAY_CA_BUNDLE=ca_file,
            RELAY_OUTBOUND_PROXY=forward_proxy.url,
        )
    response = chat(relay, upstream.url)
    assert response.status_code == 200, response.text
    relay.stop()
    # The same proxy logs a tunnel it was asked for (the tests above), and
    # the proxy is still running: it just saw nothing.
    time.sleep(1)
    assert forward_proxy.process.poll() is None
    assert forward_proxy.tunnels() == [], forward_proxy.output()
