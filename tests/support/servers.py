"""Real servers for end-to-end tests: the relay under gunicorn."""

import compileall
import os
import signal
import socket
import subprocess
import sys
import time

import requests

from tests.support.paths import ROOT


def compile_relay() -> None:
    """Byte-compile the relay's code once, for every process the tests start.
    Python reads .pyc files even where PYTHONDONTWRITEBYTECODE forbids writing
    them at import (CI images often set it): without this, every gunicorn
    worker and every CLI process compiles all of app/ from source again,
    a large share of what starting one costs."""
    for name in ("app", "migrations"):
        compileall.compile_dir(os.path.join(ROOT, name), quiet=1)
    compileall.compile_file(os.path.join(ROOT, "wsgi.py"), quiet=1)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GunicornServer:
    """`gunicorn -c ops/gunicorn.conf.py wsgi:app`, as production runs it."""

    def __init__(self, settings, workdir, workers=2, extra_env=None):
        self.settings = dict(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, f"gunicorn-{self.port}.log")
        env = dict(
            os.environ,
            **{k: str(v) for k, v in settings.items()},
            RELAY_BIND=f"127.0.0.1:{self.port}",
            RELAY_WORKERS=str(workers),
            **(extra_env or {}),
        )
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "ops/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            # A relay that never came up must not outlive its test (nor keep
            # its port and workers busy on a loaded machine).
            self.process.kill()
            self.process.wait()
            self._log.close()
            raise

    def _wait_ready(self, deadline=120):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log()}")
            try:
                if requests.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                # Refused before the socket listens; slow while the first
                # worker imports and migrates on a loaded machine (there a
                # start takes many times as long: hence the generous deadline).
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not become ready: {self.log()}")

    def log(self):
        with open(self.log_path) as handle:
            return handle.read()

    def stop(self):
        # QUIT: immediate shutdown. TERM would wait for idle keep-alive
        # connections of the clients under test; tests of graceful stops
        # send their own signal.
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
