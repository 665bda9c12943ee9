"""Agent and LLM frameworks through a keyed relay, each configured as its docs
say for an Ollama server or an OpenAI-compatible base URL: DSPy (its LiteLLM
engine, `ollama_chat/`), Haystack's OllamaChatGenerator (ollama-python, so
OLLAMA_API_KEY) and smolagents' OpenAIServerModel (`/v1`)."""

import json
import os

# LiteLLM (under DSPy) reads its model prices from the internet unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
from haystack.dataclasses import ChatMessage  # noqa: E402
from haystack_integrations.components.generators.ollama import OllamaChatGenerator  # noqa: E402
from smolagents import OpenAIServerModel, ToolCallingAgent, tool  # noqa: E402

from tests.clients.conftest import TEAM_A_KEY  # noqa: E402
from tests.support.fake_upstream import Reply, completion  # noqa: E402


def weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city's name.
    """
    return f"{city}: 21 C and sunny"


def test_dspy_sends_native_tools_to_an_ollama_chat_model(keyed, keyed_model, upstream, monkeypatch):
    relay, key = keyed
    name = keyed_model()
    # LiteLLM asks the server for a model's capabilities where these say
    # (its Ollama docs), not at the LM's api_base.
    monkeypatch.setenv("OLLAMA_API_BASE", relay.url)
    monkeypatch.setenv("OLLAMA_API_KEY", key)
    lm = dspy.LM(
        f"ollama_chat/{name}", api_base=relay.url, api_key=key, engine="litellm", cache=False
    )
    # Read from /api/show's template, as LiteLLM reads it.
    assert lm.supports_function_calling

    class Plan(dspy.Signature):
        """Call the tools that answer the question."""

        question: str = dspy.InputField()
        tools: list[dspy.Tool] = dspy.InputField()
        calls: dspy.ToolCalls = dspy.OutputField()

    upstream.reply(
        Reply(json=completion(content="{}", tool_calls=[("call_1", "weather", {"city": "Oslo"})]))
    )
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        result = dspy.Predict(Plan)(question="Weather in Oslo?", tools=[dspy.Tool(weather)])
    assert [(c.name, c.args) for c in result.calls.tool_calls] == [("weather", {"city": "Oslo"})]
    sent = upstream.last
    assert [t["function"]["name"] for t in sent.body["tools"]] == ["weather"]
    assert sent.headers["authorization"] == f"Bearer {TEAM_A_KEY}"


def test_haystack_ollama_chat_generator_with_ollama_api_key(
    keyed, keyed_model, upstream, monkeypatch
):
    relay, key = keyed
    name = keyed_model()
    monkeypatch.setenv("OLLAMA_API_KEY", key)
    generator = OllamaChatGenerator(model=name, url=relay.url)
    replies = generator.run(messages=[ChatMessage.from_user("Say hello")])["replies"]
    assert replies[0].text == "Hello from upstream"
    assert "Say hello" in json.dumps(upstream.last.body["messages"])


def test_smolagents_tool_calling_agent_runs_a_tool_then_answers(keyed, keyed_model, upstream):
    relay, key = keyed
    name = keyed_model()
    upstream.reply(
        Reply(json=completion(content=None, tool_calls=[("c1", "weather", {"city": "Oslo"})])),
        Reply(
            json=completion(
                content=None, tool_calls=[("c2", "final_answer", {"answer": "Sunny in Oslo."})]
            )
        ),
    )
    model = OpenAIServerModel(model_id=name, api_base=relay.url + "/v1", api_key=key)
    agent = ToolCallingAgent(tools=[tool(weather)], model=model, max_steps=3, verbosity_level=0)
    assert agent.run("Weather in Oslo?") == "Sunny in Oslo."
    tool_results = [
        m
        for m in upstream.last.body["messages"]
        if "Oslo: 21 C and sunny" in json.dumps(m.get("content"))
    ]
    assert tool_results, upstream.last.body["messages"]
