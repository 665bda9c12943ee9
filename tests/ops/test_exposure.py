"""An open relay (no RELAY_ADMIN_TOKEN) starts only where nobody else can reach it.

Real gunicorn with ops/gunicorn.conf.py, as production starts it: a refused
start exits non-zero, says what to set, and never listens.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from cryptography.fernet import Fernet

from tests.support.servers import ROOT, free_port

ADMIN_TOKEN = "exposure-test-admin-token-0123456789"
ADVICE = "Set RELAY_ADMIN_TOKEN to require keys, or RELAY_ALLOW_UNAUTHENTICATED=1"
# The settings this file is about, whatever the environment running the tests holds.
OURS = (
    "RELAY_BIND",
    "RELAY_ADMIN_TOKEN",
    "RELAY_ALLOW_UNAUTHENTICATED",
    "RELAY_TRUSTED_PROXIES",
    "RELAY_ALLOWED_HOSTS",
)


class Gunicorn:
    def __init__(self, tmp_path, args=(), **settings):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in OURS}
        env.update(
            RELAY_DATABASE_URL=f"sqlite:///{tmp_path}/relay.sqlite3",
            RELAY_INSTANCE_PATH=str(tmp_path / "instance"),
            RELAY_SECRET_KEY=Fernet.generate_key().decode(),
            RELAY_WORKERS="1",
        )
        env.update({k: v.format(port=self.port) for k, v in settings.items()})
        self.log_path = tmp_path / f"gunicorn-{self.port}.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "ops/gunicorn.conf.py",
                *(arg.format(port=self.port) for arg in args),
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self):
        return self.log_path.read_text()

    def exit_status(self, timeout=30):
        """The status it exits with (it must exit, and soon)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"gunicorn did not exit:\n{self.log()}")

    def serves(self, timeout=30):
        """Whether it answers /readyz on loopback (whatever else it listens on)."""
        return self.serves_at(f"127.0.0.1:{self.port}", timeout)

    def serves_at(self, bind, timeout=30):
        """Whether it answers /readyz at `bind` (host:port, or unix:path).

        Waiting for the answer, not only for "Listening at", also lets the
        worker finish booting: a worker stopped while it imports the app
        ignores the quick-shutdown signal, and the master waits out its
        graceful timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.process.poll() is None:
            try:
                if bind.startswith("unix:"):
                    sock = socket.socket(socket.AF_UNIX)
                    sock.settimeout(5)
                    sock.connect(bind[len("unix:") :])
                else:
                    host, port = bind.rsplit(":", 1)
                    sock = socket.create_connection((host, int(port)), timeout=5)
                with sock:
                    sock.sendall(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
                    if sock.recv(64).split(b" ", 2)[1:2] == [b"200"]:
                        return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def gunicorn(tmp_path):
    started = []

    def start(*args, **settings):
        started.append(Gunicorn(tmp_path, args, **settings))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def assert_refused(server, reason):
    assert server.exit_status() != 0
    log = server.log()
    assert "ollama-relay refuses to start without RELAY_ADMIN_TOKEN" in log
    assert reason in log and ADVICE in log
    # Refused before any socket or worker: nothing was ever served.
    assert "Listening at" not in log and "Booting worker" not in log


def test_network_bind_without_token_refuses(gunicorn):
    server = gunicorn(RELAY_BIND="0.0.0.0:{port}")
    assert_refused(server, "it would listen on 0.0.0.0:")


def test_command_line_bind_is_the_one_checked(gunicorn):
    # RELAY_BIND is loopback, but --bind wins: the relay would be on the network.
    server = gunicorn("--bind", "0.0.0.0:{port}", RELAY_BIND="127.0.0.1:{port}")
    assert_refused(server, "it would listen on 0.0.0.0:")


@pytest.mark.parametrize(
    "bind", ["[::]:{port}", "relay.example.com:{port}", ":{port}", "10.20.30.40:{port}"]
)
def test_other_network_binds_refuse(gunicorn, bind):
    # Refused before binding, so the address need not even exist here.
    assert_refused(gunicorn(RELAY_BIND=bind), f"it would listen on {bind.format(port='')}")


def test_one_network_bind_among_loopback_ones_refuses(gunicorn):
    server = gunicorn("--bind", "127.0.0.1:{port}", "--bind", "0.0.0.0:{port}")
    assert_refused(server, "it would listen on 0.0.0.0:")


@pytest.mark.parametrize("bind", ["localhost:{port}", "127.0.0.2:{port}", "unix:{socket}"])
def test_local_binds_start_open(gunicorn, tmp_path, bind):
    bind = bind.replace("{socket}", str(tmp_path / "relay.sock"))
    server = gunicorn(RELAY_BIND=bind)
    assert server.serves_at(bind.format(port=server.port)), server.log()


def test_command_line_loopback_bind_wins_over_a_network_one(gunicorn):
    server = gunicorn("--bind", "127.0.0.1:{port}", RELAY_BIND="0.0.0.0:{port}")
    assert server.serves(), server.log()


@pytest.mark.parametrize(
    "settings",
    [
        {"RELAY_ALLOW_UNAUTHENTICATED": "1"},
        {"RELAY_ALLOW_UNAUTHENTICATED": "true"},
        {"RELAY_ADMIN_TOKEN": ADMIN_TOKEN},
    ],
    ids=["allow-1", "allow-true", "admin-token"],
)
def test_network_bind_starts_with_a_token_or_the_flag(gunicorn, settings):
    server = gunicorn(RELAY_BIND="0.0.0.0:{port}", **settings)
    assert server.serves(), server.log()


def test_trusted_proxies_without_token_refuse_even_on_loopback(gunicorn):
    server = gunicorn(RELAY_BIND="127.0.0.1:{port}", RELAY_TRUSTED_PROXIES="1")
    assert_refused(server, "RELAY_TRUSTED_PROXIES=1 says clients reach it through a proxy")


@pytest.mark.parametrize(
    "settings",
    [{"RELAY_ALLOW_UNAUTHENTICATED": "1"}, {"RELAY_ADMIN_TOKEN": ADMIN_TOKEN}],
    ids=["allow", "admin-token"],
)
def test_trusted_proxies_start_with_a_token_or_the_flag(gunicorn, settings):
    server = gunicorn(RELAY_BIND="127.0.0.1:{port}", RELAY_TRUSTED_PROXIES="1", **settings)
    assert server.serves(), server.log()


def test_loopback_without_token_starts_open(gunicorn):
    # The default: open, as Ollama is, but only to this host.
    server = gunicorn(RELAY_BIND="127.0.0.1:{port}")
    assert server.serves(), server.log()
