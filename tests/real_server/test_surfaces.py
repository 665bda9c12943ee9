"""Every surface of the relay in front of a real inference server (issue 22).

llama-server serves Gemma 3 270M; each test asks the same question through
the relay, with the client a user of that surface has, and directly of
llama-server's /v1/chat/completions (temperature 0, the same seed and
output limit), and compares what a user would: the text, and the token
counts the usage reports. Stream and not.
"""

import ollama
import openai
import pydantic
import pytest
from anthropic import Anthropic

from tests.real_server.conftest import CHAT, EMBED
from tests.support.llama_server import SEED

QUESTION = "Name three colours of the rainbow."
MAX_TOKENS = 24


def direct(llama, stream=False, **extra):
    """(text, prompt tokens, completion tokens) of llama-server's own answer."""
    client = openai.OpenAI(base_url=llama.v1, api_key="unused", max_retries=0)
    body = {
        "model": "gemma-3-270m",
        "messages": [{"role": "user", "content": QUESTION}],
        "temperature": 0,
        "seed": SEED,
        "max_tokens": MAX_TOKENS,
        **extra,
    }
    if not stream:
        answer = client.chat.completions.create(**body)
        usage = answer.usage
        return answer.choices[0].message.content, usage.prompt_tokens, usage.completion_tokens
    text, usage = "", None
    for chunk in client.chat.completions.create(
        **body, stream=True, stream_options={"include_usage": True}
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    return text, usage.prompt_tokens, usage.completion_tokens


@pytest.fixture
def openai_client(real_relay):
    return openai.OpenAI(base_url=real_relay.url + "/v1/", api_key="unused", max_retries=0)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_chat_completions(llama, openai_client, stream):
    expected = direct(llama, stream)
    body = {
        "model": CHAT,
        "messages": [{"role": "user", "content": QUESTION}],
        "temperature": 0,
        "seed": SEED,
        "max_tokens": MAX_TOKENS,
    }
    if not stream:
        answer = openai_client.chat.completions.create(**body)
        got = (
            answer.choices[0].message.content,
            answer.usage.prompt_tokens,
            answer.usage.completion_tokens,
        )
        assert answer.model == CHAT
    else:
        text, usage = "", None
        for chunk in openai_client.chat.completions.create(
            **body, stream=True, stream_options={"include_usage": True}
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            usage = chunk.usage or usage
        got = (text, usage.prompt_tokens, usage.completion_tokens)
    assert expected[0], "llama-server answered nothing"
    assert got == expected


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_ollama_api_chat(llama, real_relay, stream):
    expected = direct(llama, stream)
    client = ollama.Client(host=real_relay.url)
    options = {"temperature": 0, "seed": SEED, "num_predict": MAX_TOKENS}
    messages = [{"role": "user", "content": QUESTION}]
    if not stream:
        answer = client.chat(model=CHAT, messages=messages, options=options)
        got = (answer.message.content, answer.prompt_eval_count, answer.eval_count)
    else:
        text, last = "", None
        for part in client.chat(model=CHAT, messages=messages, options=options, stream=True):
            text += part.message.content or ""
            last = part
        assert last.done
        got = (text, last.prompt_eval_count, last.eval_count)
    assert got == expected


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_responses(llama, openai_client, stream):
    expected = direct(llama, stream)
    body = {
        "model": CHAT,
        "input": QUESTION,
        "temperature": 0,
        "max_output_tokens": MAX_TOKENS,
        "store": False,
    }
    if not stream:
        answer = openai_client.responses.create(**body)
    else:
        with openai_client.responses.stream(**body) as events:
            answer = events.get_final_response()
    got = (answer.output_text, answer.usage.input_tokens, answer.usage.output_tokens)
    assert got == expected


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_messages(llama, real_relay, stream):
    expected = direct(llama, stream)
    client = Anthropic(base_url=real_relay.url, api_key="unused", max_retries=0)
    body = {
        "model": CHAT,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    if not stream:
        message = client.messages.create(**body)
    else:
        with client.messages.stream(**body) as events:
            message = events.get_final_message()
    text = "".join(block.text for block in message.content if block.type == "text")
    # Anthropic's input_tokens leaves out what the remote read from its cache.
    usage = message.usage
    prompt = usage.input_tokens + (usage.cache_read_input_tokens or 0)
    assert (text, prompt, usage.output_tokens) == expected


class Colour(pydantic.BaseModel):
    name: str
    hex_code: str


def test_messages_parse_gets_an_object_the_server_kept_to_the_schema(real_relay):
    client = Anthropic(base_url=real_relay.url, api_key="unused", max_retries=0)
    message = client.messages.parse(
        model=CHAT,
        max_tokens=200,
        temperature=0,
        messages=[{"role": "user", "content": "Describe the colour red as JSON."}],
        output_format=Colour,
    )
    assert isinstance(message.parsed_output, Colour)


@pytest.mark.parametrize("surface", ["openai", "ollama"])
def test_embeddings(llama_embed, real_relay, surface):
    texts = ["The sky is blue.", "Grass is green."]
    mine = openai.OpenAI(base_url=llama_embed.v1, api_key="unused", max_retries=0)
    expected = mine.embeddings.create(model="gemma-3-270m", input=texts)
    if surface == "openai":
        client = openai.OpenAI(base_url=real_relay.url + "/v1/", api_key="unused", max_retries=0)
        got = client.embeddings.create(model=EMBED, input=texts)
        assert [e.embedding for e in got.data] == pytest.approx(
            [e.embedding for e in expected.data], abs=1e-5
        )
        assert got.usage.prompt_tokens == expected.usage.prompt_tokens
    else:
        got = ollama.Client(host=real_relay.url).embed(model=EMBED, input=texts)
        assert len(got.embeddings) == 2
        for vector, want in zip(got.embeddings, expected.data, strict=True):
            assert vector == pytest.approx(want.embedding, abs=1e-5)
        assert got.prompt_eval_count == expected.usage.prompt_tokens
