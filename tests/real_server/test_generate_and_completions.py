"""/api/generate (OpenAI remotes) and /v1/completions against llama-server
(issue 22, items 2 and 9). Written before the branches that serve them were
merged: they fail until then, and are kept apart to be dropped in.
"""

import ollama
import openai
import pytest

from tests.real_server.conftest import CHAT
from tests.real_server.test_surfaces import MAX_TOKENS, QUESTION, direct
from tests.support.llama_server import SEED

PROMPT = "The three primary colours are"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_api_generate_is_a_one_turn_chat(llama, real_relay, stream):
    expected = direct(llama, stream)
    client = ollama.Client(host=real_relay.url)
    options = {"temperature": 0, "seed": SEED, "num_predict": MAX_TOKENS}
    if not stream:
        answer = client.generate(model=CHAT, prompt=QUESTION, options=options)
        got = (answer.response, answer.prompt_eval_count, answer.eval_count)
        assert answer.done and answer.done_reason in ("stop", "length")
    else:
        text, last = "", None
        for part in client.generate(model=CHAT, prompt=QUESTION, options=options, stream=True):
            text += part.response or ""
            last = part
        assert last.done
        got = (text, last.prompt_eval_count, last.eval_count)
    assert got == expected


def completions(base_url, model, stream):
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    body = {
        "model": model,
        "prompt": PROMPT,
        "temperature": 0,
        "seed": SEED,
        "max_tokens": MAX_TOKENS,
    }
    if not stream:
        answer = client.completions.create(**body)
        return answer.choices[0].text, answer.usage.prompt_tokens, answer.usage.completion_tokens
    text, usage = "", None
    for chunk in client.completions.create(
        **body, stream=True, stream_options={"include_usage": True}
    ):
        if chunk.choices:
            text += chunk.choices[0].text or ""
        usage = chunk.usage or usage
    return text, usage.prompt_tokens, usage.completion_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_v1_completions_are_relayed(llama, real_relay, stream):
    expected = completions(llama.v1, "gemma-3-270m", stream)
    assert expected[0], "llama-server completed nothing"
    assert completions(real_relay.url + "/v1/", CHAT, stream) == expected
