"""instructor (structured output by tool call) through a keyed relay's /v1.
It runs in its own virtualenv, which .ci/run makes from
tests/clients/requirements-instructor.txt; skipped where that is missing."""

import json
import os
import subprocess

import pytest

from tests.clients.conftest import TEAM_A_KEY
from tests.support.fake_upstream import Reply, completion
from tests.support.paths import ROOT

PYTHON = os.path.join(ROOT, ".venv-clients", "instructor", "bin", "python")
SCRIPT = os.path.join(ROOT, "tests", "clients", "instructor_script.py")

pytestmark = pytest.mark.skipif(
    not os.path.exists(PYTHON), reason="instructor's virtualenv missing (.ci/run makes it)"
)


def test_instructor_gets_a_validated_model_from_a_forced_tool_call(keyed, keyed_model, upstream):
    relay, key = keyed
    name = keyed_model()
    city = {"name": "Oslo", "population": 709000}
    upstream.reply(Reply(json=completion(content=None, tool_calls=[("c1", "City", city)])))
    result = subprocess.run(
        [PYTHON, SCRIPT],
        env={
            "PATH": os.environ.get("PATH", ""),
            "OPENAI_BASE_URL": relay.url + "/v1",
            "OPENAI_API_KEY": key,
            "RELAY_MODEL": name,
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout) == city
    sent = upstream.last.body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    assert [t["function"]["name"] for t in sent["tools"]] == ["City"]
    assert upstream.last.headers["authorization"] == f"Bearer {TEAM_A_KEY}"
