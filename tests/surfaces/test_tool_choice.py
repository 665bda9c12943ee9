"""tool_choice honoured on every OpenAI and Anthropic surface (Ollama's own
layers ignore it: ollama/ollama#17921): passed on by /v1/chat/completions,
converted by /v1/responses and /v1/messages, on the wire to the fake remote."""

import anthropic
import openai
import pytest

HI = [{"role": "user", "content": "weather in Paris?"}]
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}}
CHAT_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": PARAMETERS}}
CHAT_FORCED = {"type": "function", "function": {"name": "get_weather"}}


def sdk(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1/", api_key="-", max_retries=0)


@pytest.mark.parametrize("choice", ["auto", "none", "required", CHAT_FORCED])
def test_chat_completions_passes_it_on(gateway, remote_model, upstream, choice):
    remote_model()
    sdk(gateway).chat.completions.create(
        model="remote", messages=HI, tools=[CHAT_TOOL], tool_choice=choice
    )
    assert upstream.last.body["tool_choice"] == choice


@pytest.mark.parametrize(
    "choice, sent",
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "get_weather"}, CHAT_FORCED),
        ({"type": "allowed_tools", "mode": "required", "tools": []}, "required"),
    ],
)
def test_responses_converts_it(gateway, remote_model, upstream, choice, sent):
    remote_model()
    tool = {"type": "function", "name": "get_weather", "parameters": PARAMETERS, "strict": False}
    sdk(gateway).responses.create(model="remote", input="hi", tools=[tool], tool_choice=choice)
    assert upstream.last.body["tool_choice"] == sent


@pytest.mark.parametrize(
    "choice, sent",
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, CHAT_FORCED),
    ],
)
def test_messages_converts_it(gateway, remote_model, upstream, choice, sent):
    remote_model()
    tool = {"name": "get_weather", "input_schema": PARAMETERS}
    anthropic.Anthropic(base_url=gateway.url, api_key="-", max_retries=0).messages.create(
        model="remote", max_tokens=64, messages=HI, tools=[tool], tool_choice=choice
    )
    assert upstream.last.body["tool_choice"] == sent


def test_messages_refuses_a_tool_it_was_not_given(gateway, remote_model, upstream):
    remote_model()
    tool = {"name": "get_weather", "input_schema": PARAMETERS}
    with pytest.raises(anthropic.BadRequestError) as excinfo:
        anthropic.Anthropic(base_url=gateway.url, api_key="-", max_retries=0).messages.create(
            model="remote",
            max_tokens=64,
            messages=HI,
            tools=[tool],
            tool_choice={"type": "tool", "name": "rm_rf"},
        )
    assert "tool_choice" in str(excinfo.value)
    assert upstream.requests == []
