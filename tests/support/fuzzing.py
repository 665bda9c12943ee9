"""Schemathesis against a real relay, from its own /openapi.json: shared by
tests/surfaces/openapi/test_openapi.py (a few examples per operation, in CI) and ops/fuzz/run
(many, nightly-style).

The relay runs with RELAY_ADMIN_TOKEN set and is called with it, so every
operation, the admin's too, is reachable; its models point at the fake
upstream (tests/support/fake_upstream.py), so inference reaches a real remote.
"""

import os
import subprocess
import sys

import requests

from tests.support.paths import ROOT

HOOKS = os.path.join(ROOT, "ops", "fuzz", "hooks.py")

ADMIN_TOKEN = "fuzz-admin-token-0123456789"

# What a fuzzing run fails on: a 5xx, a status, media type, body or header the
# document does not describe. (Hangs: every request has a timeout.) FUZZ_CHECKS
# (comma-separated) replaces them for an exploratory run.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)

REQUEST_TIMEOUT = 15


def relay_settings():
    """Settings for the relay under test (besides its database and instance path)."""
    return {
        "RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "RELAY_REMOTE_ALLOWLIST": "127.0.0.1",
        # A remote that stalls answers 504 well before the fuzzer's timeout.
        "RELAY_READ_TIMEOUT": "5",
        # Fuzzed requests the fake upstream refuses must not put it in cool-down.
        "RELAY_COOLDOWN_FAILURES": "1000000",
    }


def create_models(relay_url, upstream_url):
    """The models ops/fuzz/hooks.py names: an OpenAI-compatible remote and an Ollama one."""
    for body in (
        {
            "name": "remote",
            "from": "remote-model",
            "remote_type": "openai",
            "remote_host": upstream_url + "/v1",
        },
        {
            "name": "native",
            "from": "remote-model",
            "remote_type": "ollama",
            "remote_host": upstream_url,
        },
    ):
        response = requests.post(
            relay_url + "/api/create",
            json=dict(body, stream=False),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()


def command(relay_url, examples, seed, report_dir, workers=1):
    """The schemathesis command line for a run against `relay_url`."""
    return [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"),
        "run",
        f"{relay_url}/openapi.json",
        "--checks",
        os.environ.get("FUZZ_CHECKS") or ",".join(CHECKS),
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--workers",
        str(workers),
        "--request-timeout",
        str(REQUEST_TIMEOUT),
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        # The key is sent as above: generating other keys would only test the 401.
        "--generation-with-security-parameters",
        "false",
        "--generation-database",
        "none",
        "--no-color",
        "--output-truncate",
        "true",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]


def run(relay_url, examples, seed, report_dir, workers=1, timeout=None):
    """Run schemathesis; its CompletedProcess (output in stdout). A run over
    `timeout` seconds raises subprocess.TimeoutExpired."""
    env = dict(os.environ, SCHEMATHESIS_HOOKS=HOOKS, NO_COLOR="1")
    os.makedirs(report_dir, exist_ok=True)
    # In the report's folder: schemathesis keeps what `st replay` needs in .schemathesis/.
    return subprocess.run(
        command(relay_url, examples, seed, report_dir, workers),
        cwd=report_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
