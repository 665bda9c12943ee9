"""Fields that make a provider store data or bill beyond the token price
(store, metadata, service_tier, prediction, ...) reach the remote only if the
model forwards them, on every surface that can carry them, and `n` is refused
above the model's max_n: through gunicorn, with the real SDKs, checked in
what the fake remote received."""

import anthropic
import openai
import pytest
import requests

from app.chat.forwarding import GOVERNED
from tests.support.config import GATEWAY_KEY
from tests.support.models import create_model

CHAT = [{"role": "user", "content": "hi"}]
# What a client may send of each governed field (OpenAI's Chat Completions shapes).
SENT = {
    "store": True,
    "metadata": {"project": "x"},
    "service_tier": "priority",
    "prediction": {"type": "content", "content": "predicted"},
    "web_search_options": {"search_context_size": "high"},
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"ttl": "24h"},
}


def sdk(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="ollama", max_retries=0)


def governed_in(body):
    return {name: body[name] for name in GOVERNED if name in body}


def test_chat_completions_drop_them_unless_the_model_forwards_them(gateway, remote_model, upstream):
    assert set(SENT) == set(GOVERNED)
    remote_model("plain")
    for stream in (False, True):
        answer = sdk(gateway).chat.completions.create(
            model="plain", messages=CHAT, temperature=0.5, stream=stream, extra_body=SENT
        )
        if stream:
            assert "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
        else:
            assert answer.choices[0].message.content == "Hello from upstream"
        # Dropped silently: the request succeeded, the rest of it went through.
        assert governed_in(upstream.last.body) == {}
        assert upstream.last.body["temperature"] == 0.5

    remote_model("forwarding", forward=list(GOVERNED))
    sdk(gateway).chat.completions.create(model="forwarding", messages=CHAT, extra_body=SENT)
    assert governed_in(upstream.last.body) == SENT

    remote_model("only-store", forward=["store"])
    sdk(gateway).chat.completions.create(model="only-store", messages=CHAT, extra_body=SENT)
    assert governed_in(upstream.last.body) == {"store": True}


def test_n_above_the_models_max_n_is_refused_naming_n(gateway, remote_model, upstream):
    remote_model("single")
    calls = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(gateway).chat.completions.create(model="single", messages=CHAT, n=8)
    assert refused.value.body["param"] == "n"
    assert "max_n" in refused.value.body["message"]
    assert len(upstream.requests) == calls  # the provider was never asked
    sdk(gateway).chat.completions.create(model="single", messages=CHAT, n=1)
    assert upstream.last.body["n"] == 1

    remote_model("eight", max_n=8)
    sdk(gateway).chat.completions.create(model="eight", messages=CHAT, n=8)
    assert upstream.last.body["n"] == 8
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(gateway).chat.completions.create(model="eight", messages=CHAT, n=9)
    assert refused.value.body["param"] == "n"


def test_responses_keep_their_own_store_and_forward_the_rest_only_if_allowed(
    gateway, remote_model, upstream
):
    remote_model("plain")
    response = sdk(gateway).responses.create(
        model="plain",
        input="hi",
        store=True,
        metadata={"project": "x"},
        service_tier="priority",
        extra_body={"prompt_cache_retention": "24h"},
    )
    assert governed_in(upstream.last.body) == {}
    # `store` is the relay's: the response is stored here all the same.
    assert sdk(gateway).responses.retrieve(response.id).id == response.id

    remote_model("forwarding", forward=list(GOVERNED))
    sdk(gateway).responses.create(
        model="forwarding",
        input="hi",
        store=True,
        metadata={"project": "x"},
        service_tier="priority",
        extra_body={"prompt_cache_retention": "24h"},
        stream=False,
    )
    # Never `store`: the Responses API's store is not the remote's to act on.
    assert governed_in(upstream.last.body) == {
        "metadata": {"project": "x"},
        "service_tier": "priority",
        "prompt_cache_retention": "24h",
    }


def test_messages_forward_the_service_tier_only_if_allowed(gateway, remote_model, upstream):
    client = anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0)
    remote_model("plain")
    for stream in (False, True):
        answer = client.messages.create(
            model="plain",
            max_tokens=50,
            messages=CHAT,
            metadata={"user_id": "u-1"},
            service_tier="auto",
            stream=stream,
        )
        if stream:
            list(answer)
        assert governed_in(upstream.last.body) == {}
        # The end user's identifier is no cost or storage: it goes as before.
        assert upstream.last.body["user"] == "u-1"

    remote_model("forwarding", forward=["service_tier", "metadata"])
    client.messages.create(
        model="forwarding", max_tokens=50, messages=CHAT, service_tier="standard_only"
    )
    # Anthropic's standard_only is OpenAI's default tier (never priority).
    assert governed_in(upstream.last.body) == {"service_tier": "default"}


def test_ollama_chat_relays_none_of_them_to_an_ollama_remote(gateway, remote_model, upstream):
    remote_model("far", remote_type="ollama", path="")
    for endpoint, extra in (("chat", {"messages": CHAT}), ("generate", {"prompt": "hi"})):
        response = requests.post(
            f"{gateway.url}/api/{endpoint}",
            json={"model": "far", "stream": False, **extra, **SENT},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert upstream.last.path == f"/api/{endpoint}"
        assert governed_in(upstream.last.body) == {}
    remote_model("far", remote_type="ollama", path="", forward=["metadata"])
    requests.post(
        f"{gateway.url}/api/chat",
        json={"model": "far", "stream": False, "messages": CHAT, **SENT},
        timeout=30,
    ).raise_for_status()
    assert governed_in(upstream.last.body) == {"metadata": {"project": "x"}}


def test_the_settings_are_checked_shown_and_inherited(gateway, upstream):
    host = upstream.url + "/v1"
    bad = create_model(gateway, "bad", host, forward=["temperature"], expect=400)
    assert "forward" in bad.text
    for max_n in (0, 129, "2"):
        assert "max_n" in create_model(gateway, "bad", host, max_n=max_n, expect=400).text

    create_model(
        gateway,
        "parent",
        host,
        forward=["service_tier", "store"],
        max_n=4,
        remote_api_key=GATEWAY_KEY,
    )
    shown = requests.post(gateway.url + "/api/show", json={"model": "parent"}, timeout=10).json()
    # Kept in one order whatever the order given.
    assert (shown["forward"], shown["max_n"]) == (["store", "service_tier"], 4)

    create_model(gateway, "child", None, **{"from": "parent"})
    shown = requests.post(gateway.url + "/api/show", json={"model": "child"}, timeout=10).json()
    assert (shown["forward"], shown["max_n"]) == (["store", "service_tier"], 4)

    create_model(gateway, "narrower", None, **{"from": "parent"}, forward=[], max_n=1)
    shown = requests.post(gateway.url + "/api/show", json={"model": "narrower"}, timeout=10)
    assert "forward" not in shown.json() and "max_n" not in shown.json()
    with pytest.raises(openai.BadRequestError):
        sdk(gateway).chat.completions.create(model="narrower", messages=CHAT, n=2)
    sdk(gateway).chat.completions.create(model="child", messages=CHAT, n=4, extra_body=SENT)
    assert governed_in(upstream.last.body) == {"store": True, "service_tier": "priority"}
