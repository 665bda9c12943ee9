"""ops/systemd: the unit says what gunicorn needs, and systemd accepts it.

Nothing here starts the unit (test machines have no systemd as PID 1); the
values that decide whether a stop or reload cuts streams are checked against
ops/gunicorn.conf.py, and gunicorn itself is shown to send READY=1.
"""

import os
import re
import runpy
import shutil
import socket
import subprocess
import sys

import pytest

from tests.support.config import relay_settings
from tests.support.servers import ROOT, GunicornServer

UNIT = os.path.join(ROOT, "ops", "systemd", "ollama-relay.service")
GUNICORN_ENV = os.path.join(ROOT, "ops", "systemd", "gunicorn.env")
GUNICORN_CONF = os.path.join(ROOT, "ops", "gunicorn.conf.py")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
NO_ANALYZE = "systemd-analyze not installed (Debian package `systemd`)"


def parse_unit(path):
    """{(section, key): [values]}: systemd allows a key several times."""
    entries, section = {}, None
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            entries.setdefault((section, key.strip()), []).append(value.strip())
    return entries


def read_env_file(path):
    values = {}
    with open(path) as handle:
        for line in handle:
            match = re.match(r"^([A-Z_]+)='([^']*)'$", line.strip())
            if match:
                values[match.group(1)] = match.group(2)
    return values


def graceful_timeout(environ):
    """graceful_timeout as ops/gunicorn.conf.py computes it in `environ`."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(environ)
        return runpy.run_path(GUNICORN_CONF)["graceful_timeout"]
    finally:
        os.environ.clear()
        os.environ.update(saved)


def service(key):
    values = parse_unit(UNIT).get(("Service", key))
    assert values, f"{key}= missing from [Service]"
    return values


def test_stop_waits_longer_than_gunicorns_graceful_timeout():
    stop = int(service("TimeoutStopSec")[0])
    # Both the config's own default and the value the unit's env file sets:
    # systemd must not SIGKILL streams gunicorn is still letting finish.
    assert stop > graceful_timeout({})
    assert stop > graceful_timeout(read_env_file(GUNICORN_ENV))
    # TERM to the master only (it drains its workers), SIGKILL to all last.
    assert service("KillMode") == ["mixed"]


def test_reload_is_hup_to_the_master_and_start_is_notify():
    assert service("ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert service("Type") == ["notify"]
    assert service("NotifyAccess") == ["main"]
    exec_start = service("ExecStart")[0]
    assert exec_start.endswith("/venv/bin/gunicorn -c ops/gunicorn.conf.py wsgi:app")
    # -c ops/gunicorn.conf.py is relative: the working directory is the code.
    assert service("WorkingDirectory")[0].endswith("/src")


def test_secrets_come_from_an_environment_file_and_the_service_is_confined():
    assert "/etc/ollama-relay/relay.env" in service("EnvironmentFile")
    assert service("User")[0] not in ("", "root")
    assert service("NoNewPrivileges") == ["yes"]
    assert service("ProtectSystem") == ["strict"]
    instance = read_env_file(os.path.join(ROOT, "ops", "systemd", "relay.env.example"))
    assert service("ReadWritePaths") == [instance["RELAY_INSTANCE_PATH"]]
    assert service("ProtectHome") == ["yes"]
    assert service("PrivateTmp") == ["yes"]


@pytest.mark.external
@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason=NO_ANALYZE)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    # verify insists that ExecStart exists: point it at this checkout's venv.
    with open(UNIT) as handle:
        text = handle.read().replace(
            "/opt/ollama-relay/venv/bin/gunicorn",
            os.path.join(os.path.dirname(sys.executable), "gunicorn"),
        )
    unit = tmp_path / "ollama-relay.service"
    unit.write_text(text)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 on unknown keys or bad values and only prints them.
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@pytest.mark.external
@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason=NO_ANALYZE)
def test_hardening_keeps_the_exposure_low():
    # systemd's own score of the sandbox, 0 (confined) to 10 (exposed);
    # this unit scores 1.7 on systemd 252. Fail if a change pushes it past 3.
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=30", UNIT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


@pytest.mark.server
def test_gunicorn_tells_systemd_it_is_ready(tmp_path):
    """Type=notify is only right if gunicorn sends READY=1 on $NOTIFY_SOCKET."""
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(30)
        server = GunicornServer(
            relay_settings(tmp_path), tmp_path, workers=1, extra_env={"NOTIFY_SOCKET": path}
        )
        try:
            message = sock.recv(4096).decode()
        finally:
            server.stop()
    assert "READY=1" in message.splitlines()
