"""ops/gunicorn.conf.py as gunicorn itself reads it."""

import ast
import os
import subprocess
import sys

from tests.support.paths import ROOT


def gunicorn(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "ops/gunicorn.conf.py", *args, "wsgi:app"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings(*args, **env):
    result = gunicorn("--print-config", *args, **env)
    assert result.returncode == 0, result.stderr
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def test_check_config_passes():
    result = gunicorn("--check-config")
    assert result.returncode == 0, result.stderr


def test_defaults_suit_long_streams():
    config = settings()
    assert config["worker_class"] == "gevent"
    assert config["bind"] == "['127.0.0.1:11434']"
    assert config["preload_app"] == "False"
    assert int(config["graceful_timeout"]) >= 300
    assert int(config["worker_connections"]) >= 1000


def test_environment_overrides_and_command_line_bind_wins():
    config = settings(RELAY_WORKERS="3", RELAY_GRACEFUL_TIMEOUT="45", RELAY_BIND="0.0.0.0:9000")
    assert (config["workers"], config["graceful_timeout"], config["bind"]) == (
        "3",
        "45",
        "['0.0.0.0:9000']",
    )
    config = settings("--bind", "127.0.0.1:9999", RELAY_BIND="0.0.0.0:9000")
    assert config["bind"] == "['127.0.0.1:9999']"


def test_config_imports_no_app_code():
    with open(os.path.join(ROOT, "ops", "gunicorn.conf.py")) as handle:
        tree = ast.parse(handle.read())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    }
    assert not imported & {"app", "wsgi", "migrations"}
