"""Issue 22: structured output and stop sequences on /v1/messages.

- `output_config.format` (what the anthropic SDK's `messages.parse` sends)
  was dropped without a word: the answer was free text and the SDK raised
  ValidationError. It is Chat Completions' `response_format` now.
- `stop_sequence` was always null when the remote did not name the stop
  (llama.cpp, OpenAI): it is filled where it can be known
  (app/surfaces/anthropic/output.py states the rule).

Converters first, then the anthropic SDK over HTTP against the fake remote
(tests/real_server/ does both against llama-server).
"""

import anthropic
import pydantic
import pytest
import requests

from app.chat.problems import RequestProblem
from app.surfaces.anthropic.output import matched_stop
from app.surfaces.anthropic.request import chat_request
from tests.support.config import GATEWAY_KEY
from tests.support.fake_upstream import Reply, chunk, completion

SCHEMA = {
    "type": "object",
    "title": "City",
    "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["name", "population"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "The largest city of France, as JSON."}]


class City(pydantic.BaseModel):
    name: str
    population: int


def test_output_config_format_is_response_format():
    body = {"messages": ASK, "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}
    assert chat_request(body, "m")["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "City", "schema": SCHEMA},
    }
    # With effort beside it, both hold; the earlier beta's top-level output_format too.
    body["output_config"]["effort"] = "low"
    assert chat_request(body, "m")["response_format"]["json_schema"]["schema"] == SCHEMA
    beta = {"messages": ASK, "output_format": {"type": "json_schema", "schema": {"type": "object"}}}
    assert chat_request(beta, "m")["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }
    assert "response_format" not in chat_request({"messages": ASK}, "m")


@pytest.mark.parametrize(
    "output_config, param",
    [
        ({"format": {"type": "text"}}, "output_config.format"),
        ({"format": "json"}, "output_config.format"),
        ({"format": {"type": "json_schema"}}, "output_config.format.schema"),
        ({"format": {"type": "json_schema", "schema": []}}, "output_config.format.schema"),
    ],
)
def test_a_format_the_relay_cannot_keep_is_refused_naming_it(output_config, param):
    with pytest.raises(RequestProblem) as caught:
        chat_request({"messages": ASK, "output_config": output_config}, "m")
    assert caught.value.param == param


@pytest.mark.parametrize(
    "finish, stops, named, text, expected",
    [
        ("stop", ["END"], None, "done ", None),  # stripped and unnamed: unknown, even alone
        ("stop", ["END"], None, "done END", "END"),  # kept by the remote
        ("stop", ["A", "B"], None, "done ", None),  # several, no sign: unknown
        ("stop", ["A", "B"], "B", "done ", "B"),  # the remote names it (vLLM)
        ("stop", ["A", "B"], None, "done B", "B"),  # the remote kept the stop text
        ("stop", ["A", "B"], "C", "done ", None),  # named, but not one of the request's
        ("stop", [], None, "done", None),  # no stop sequences: the model's own end
        ("length", ["END"], None, "done", None),  # cut by max_tokens
    ],
)
def test_which_stop_sequence_ended_the_answer(finish, stops, named, text, expected):
    assert matched_stop(finish, stops, named, text) == expected


@pytest.fixture
def client(gateway):
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


def test_messages_parse_gets_a_parsed_object(client, remote_model, upstream):
    model = remote_model()
    upstream.reply(Reply(json=completion('{"name": "Paris", "population": 2100000}')))
    message = client.messages.parse(model=model, max_tokens=100, messages=ASK, output_format=City)
    assert message.parsed_output == City(name="Paris", population=2100000)
    sent = upstream.last.body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "City"
    assert set(sent["json_schema"]["schema"]["properties"]) == {"name", "population"}


def test_a_format_it_cannot_keep_is_a_400_naming_the_field(gateway, remote_model, upstream):
    model = remote_model()
    response = requests.post(
        gateway.url + "/v1/messages",
        headers={"x-api-key": GATEWAY_KEY},
        timeout=30,
        json={"model": model, "max_tokens": 10, "messages": ASK, "output_config": {"format": 1}},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "output_config.format" in error["message"]
    assert upstream.requests == []


def test_a_stop_sequence_the_remote_names_or_keeps_is_named_stream_or_not(
    client, remote_model, upstream
):
    model = remote_model()
    # As vLLM answers: "stop", the stop text stripped, and named.
    named = completion("1, 2, 3")
    named["choices"][0]["stop_reason"] = ", 4"
    upstream.reply(Reply(json=named))
    message = client.messages.create(
        model=model, max_tokens=100, messages=ASK, stop_sequences=[", 4"]
    )
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", ", 4")
    assert upstream.last.body["stop"] == [", 4"]
    # A stream whose text ends with it (a remote that keeps the stop text).
    upstream.reply(
        Reply(sse=[chunk({"role": "assistant", "content": "1, 2, 3, 4"}), chunk({}, "stop")])
    )
    with client.messages.stream(
        model=model, max_tokens=100, messages=ASK, stop_sequences=[", 4"]
    ) as stream:
        final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", ", 4")


def test_without_a_sign_it_stays_end_turn(client, remote_model, upstream):
    """As llama.cpp and OpenAI answer: "stop" and the stop text stripped,
    which a natural end looks like too, with one stop sequence or several."""
    model = remote_model()
    for stops in (["4"], ["4", "5"]):
        upstream.reply(Reply(json=completion("1, 2, 3")))
        message = client.messages.create(
            model=model, max_tokens=100, messages=ASK, stop_sequences=stops
        )
        assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    # An answer that ends with one of them (a remote that keeps the stop text).
    upstream.reply(Reply(json=completion("1, 2, 3, 4")))
    message = client.messages.create(
        model=model, max_tokens=100, messages=ASK, stop_sequences=["4", "5"]
    )
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "4")
    assert message.content[0].text == "1, 2, 3, 4"
