"""What llama-server found broken in the relay (issue 22), as regression tests
against it. tests/web/test_client_watch.py, tests/remotes/test_retries.py and
tests/surfaces/anthropic/test_output.py hold the same at the wire level.
"""

import json
import uuid

import openai
import pytest
import requests
from anthropic import Anthropic

from tests.real_server.conftest import CHAT
from tests.support.access import json_lines, until

LONG = 4000  # tokens: minutes of generation on a small machine


def predicted(llama):
    """llama-server's count of the tokens it has generated, from /metrics."""
    for line in requests.get(llama.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("llamacpp:tokens_predicted_total"):
            return float(line.split()[-1])
    raise AssertionError("llama-server's /metrics has no tokens_predicted_total")


def test_a_client_that_gives_up_stops_the_generation(llama, real_relay):
    until(lambda: llama.busy_slots() == 0, "llama-server idle before the test", deadline=120)
    before = predicted(llama)
    request_id = uuid.uuid4().hex
    client = openai.OpenAI(
        base_url=real_relay.url + "/v1/",
        api_key="unused",
        max_retries=0,
        timeout=3,
        default_headers={"X-Request-ID": request_id},
    )
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model=CHAT,
            messages=[{"role": "user", "content": "Tell a very long story."}],
            max_tokens=LONG,
            temperature=0,
            extra_body={"ignore_eos": True},  # llama.cpp's: no early end
        )
    # llama-server stops once the relay closes its connection: its slot goes
    # idle with far fewer tokens generated than were asked.
    until(lambda: llama.busy_slots() == 0, "llama-server stopped generating", deadline=120)
    assert predicted(llama) - before < LONG

    def logged():
        lines = [r for r in json_lines(real_relay.log()) if r.get("request_id") == request_id]
        return lines and lines[-1].get("status")

    until(logged, "the request's log line", deadline=60)
    (line,) = [r for r in json_lines(real_relay.log()) if r.get("request_id") == request_id]
    assert line["status"] == 499 and line["tokens_estimated"] is True
    assert line["tokens_in"] > 0


def test_a_stop_llama_server_stripped_ends_the_same_text(llama, real_relay):
    """llama-server strips the stop text and names no stop: the answer is
    the same text, and stop_sequence stays unknown (null, end_turn) rather
    than guessed (app/surfaces/anthropic/output.py)."""
    ask = [{"role": "user", "content": "List five colours, separated by commas."}]
    mine = openai.OpenAI(base_url=llama.v1, api_key="unused", max_retries=0)
    expected = mine.chat.completions.create(
        model="gemma-3-270m", messages=ask, temperature=0, max_tokens=60, stop=[","]
    )
    client = Anthropic(base_url=real_relay.url, api_key="unused", max_retries=0)
    message = client.messages.create(
        model=CHAT, max_tokens=60, temperature=0, messages=ask, stop_sequences=[","]
    )
    assert expected.choices[0].finish_reason == "stop"
    assert "," not in expected.choices[0].message.content
    assert message.content[0].text == expected.choices[0].message.content
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def test_a_500_after_the_generation_is_not_generated_again(llama, real_relay):
    """llama-server answers 500 when the model's tool-call output does not
    parse; at temperature 0 every retry generates it again, and fails again."""
    body = {
        "messages": [{"role": "user", "content": "Call get_weather for Paris, then for Rome."}],
        "tools": TOOLS,
        "temperature": 0,
        "max_tokens": 200,
    }
    direct = requests.post(
        llama.v1 + "/chat/completions", json={"model": "gemma-3-270m", **body}, timeout=300
    )
    if direct.status_code != 500:
        pytest.skip(
            f"this model's tool-call output parsed ({direct.status_code}): nothing to retry"
        )
    request_id = uuid.uuid4().hex
    response = requests.post(
        real_relay.url + "/v1/chat/completions",
        json={"model": CHAT, **body},
        headers={"X-Request-ID": request_id},
        timeout=300,
    )
    assert response.status_code == 500, response.text
    assert json.loads(response.text)["error"]["message"].startswith("API error (500)")
    until(
        lambda: any(r.get("request_id") == request_id for r in json_lines(real_relay.log())),
        "the request's log line",
        deadline=60,
    )
    (line,) = [r for r in json_lines(real_relay.log()) if r.get("request_id") == request_id]
    assert line["attempts"] == 1
