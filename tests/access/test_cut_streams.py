"""Issue 18, hole 3: a request whose remote's usage never came is counted as
the relay's estimate, not as nothing.

A stream the client closed before the remote's last (usage) chunk used to
record 0 input and 0 output tokens on every surface: 9 cut streams of
4,000-character prompts against a key with `tpm: 40` never reached the
limit, while the provider bills them. Now such a request counts, in usage
rows, tpm and cost, as the relay's estimate (app/chat/estimate.py): the
request as sent to the remote, characters / 4, and the text the remote sent,
characters / 4. So does a stream the remote cut, and an answer from a
remote that reports no usage. Over real sockets, to the relay under gunicorn.
"""

import time
from decimal import Decimal

import pytest
import requests

from tests.support.access import ADMIN, ADMIN_TOKEN, bearer, create_key, unique, until
from tests.support.fake_upstream import Reply, chunk, completion, text_stream

PROMPT = "word " * 800  # 4,000 characters: over 1,000 tokens, as the estimate counts them
MESSAGES = [{"role": "user", "content": PROMPT}]
# What the requests send, by surface; /api/generate needs an Ollama remote.
SURFACES = {
    "/v1/chat/completions": {"messages": MESSAGES},
    "/v1/responses": {"input": PROMPT},
    "/v1/messages": {"max_tokens": 100, "messages": MESSAGES},
    "/api/chat": {"messages": MESSAGES},
    "/api/generate": {"prompt": PROMPT},
}
# One dollar per million tokens either way: the cost is the tokens' count.
PRICE = {"input": 1, "output": 1}


@pytest.fixture
def relay(module_relays):
    """One relay for the module: each test has a model and a key of its own."""
    return module_relays.get(workers=2, RELAY_ADMIN_TOKEN=ADMIN_TOKEN)


def model_on(relay, upstream, ollama=False):
    name = unique("cut")
    response = requests.post(
        relay.url + "/api/create",
        headers=ADMIN,
        timeout=10,
        json={
            "name": name,
            "from": "remote-model",
            "remote_type": "ollama" if ollama else "openai",
            "remote_host": upstream.url + ("" if ollama else "/v1"),
            "price": PRICE,
            "stream": False,
        },
    )
    assert response.status_code == 200, response.text
    return name


def held_stream(ollama):
    """A stream that sends a first piece of text, then nothing but keep-alives."""
    if ollama:
        first = {"model": "remote-model", "response": "Hello", "done": False}
        return Reply(ndjson=[first], hold=True)
    return Reply(sse=[chunk({"role": "assistant", "content": "Hello"})], hold=True)


def post(relay, key, path, model, stream=True, **extra):
    body = {"model": model, "stream": stream, **SURFACES[path], **extra}
    return requests.post(
        relay.url + path, headers=bearer(key), json=body, stream=stream, timeout=30
    )


def cut_stream(relay, upstream, key, path, model):
    """Open a stream, read its first line, hang up: the status it had."""
    upstream.client_went_away.clear()
    response = post(relay, key, path, model)
    if response.status_code != 200:
        response.close()
        return response.status_code
    next(response.iter_lines())
    response.close()
    assert upstream.client_went_away.wait(20), "the relay kept the cut stream open"
    return 200


def rows_of(relay, key_name, requests_expected):
    """The key's usage rows once the workers have written `requests_expected` requests
    (a bound generous enough for a busy machine: a cut stream ends when the relay
    notices the client gone)."""
    deadline = time.monotonic() + 60
    while True:
        rows = requests.get(
            relay.url + "/api/usage", params={"key": key_name}, headers=ADMIN, timeout=10
        ).json()["usage"]
        if sum(r["requests"] for r in rows) >= requests_expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


@pytest.mark.parametrize("path", SURFACES)
def test_cut_streams_count_the_estimate_and_reach_the_tpm_limit(relay, upstream, path):
    ollama = path == "/api/generate"
    model = model_on(relay, upstream, ollama)
    name, key = create_key(relay, unique("cutter"), tpm=40)
    upstream.reply(*[held_stream(ollama) for _ in range(9)])
    statuses = [cut_stream(relay, upstream, key, path, model) for _ in range(9)]
    assert statuses[0] == 200 and set(statuses) <= {200, 429}, statuses
    cut = statuses.count(200)

    rows = rows_of(relay, name, cut)
    assert [r["requests"] for r in rows] == [cut]
    (row,) = rows
    # Each cut stream: its 4,000-character prompt, at least 1,000 tokens; its
    # "Hello", 2 tokens.
    assert row["input_tokens"] >= 1000 * cut
    assert row["output_tokens"] == 2 * cut
    assert Decimal(row["cost"]) == Decimal(row["input_tokens"] + row["output_tokens"]) / 10**6

    # The tenth request is refused: the key is far over its 40 tokens a minute.
    def refused():
        response = post(relay, key, path, model, stream=False)
        return response.status_code == 429 and "tpm" in response.text

    until(refused, "a key whose cut streams passed its tpm is refused")


def test_the_estimate_is_what_count_tokens_says_and_the_text_sent(relay, upstream):
    model = model_on(relay, upstream)
    name, key = create_key(relay, unique("counted"))
    counted = requests.post(
        relay.url + "/v1/messages/count_tokens",
        headers=bearer(key),
        timeout=10,
        json={"model": model, "messages": MESSAGES},
    )
    assert counted.status_code == 200, counted.text
    upstream.reply(held_stream(False))
    assert cut_stream(relay, upstream, key, "/v1/messages", model) == 200
    (row,) = rows_of(relay, name, 1)
    assert (row["input_tokens"], row["output_tokens"]) == (counted.json()["input_tokens"], 2)


def without_usage(answer):
    return {k: v for k, v in answer.items() if k != "usage"}


# text_stream's chunks: role, "Hello", " there", finish, usage.
MISSING = {
    "the remote cut the stream": lambda: Reply(sse=text_stream("Hello", " there"), cut_after=2),
    "a stream without usage": lambda: Reply(sse=text_stream("Hello", " there")[:-1]),
    "an answer without usage": lambda: Reply(json=without_usage(completion("Hello there"))),
}


@pytest.mark.parametrize("case", MISSING)
def test_a_remote_that_reports_no_usage_counts_the_estimate(relay, upstream, case):
    model = model_on(relay, upstream)
    name, key = create_key(relay, unique("unreported"))
    upstream.reply(MISSING[case]())
    stream = case != "an answer without usage"
    response = post(relay, key, "/v1/chat/completions", model, stream=stream)
    assert response.status_code == 200
    response.content  # read to its end
    (row,) = rows_of(relay, name, 1)
    assert row["input_tokens"] >= 1000
    # "Hello" alone (cut after it) or "Hello there": 2 or 3 tokens.
    assert row["output_tokens"] == (2 if case == "the remote cut the stream" else 3)
