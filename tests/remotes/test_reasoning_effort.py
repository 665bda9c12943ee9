"""Reasoning effort from every surface to the remote, on the wire: turning
reasoning off ("none"), the levels past a remote's ends ("max", "xhigh",
"minimal"), and the model setting for remotes that refuse "none"."""

import anthropic
import ollama
import openai
import pytest
import requests

from tests.support.fake_upstream import Reply, completion

HI = [{"role": "user", "content": "hi"}]


def _ollama(gateway, **fields):
    ollama.Client(host=gateway.url).chat(model="remote", messages=HI, **fields)


def _sdk(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1/", api_key="-", max_retries=0)


def _chat(gateway, **fields):
    _sdk(gateway).chat.completions.create(model="remote", messages=HI, **fields)


def _responses(gateway, **fields):
    _sdk(gateway).responses.create(model="remote", input="hi", **fields)


def _messages(gateway, **fields):
    anthropic.Anthropic(base_url=gateway.url, api_key="-", max_retries=0).messages.create(
        model="remote", max_tokens=64, messages=HI, **fields
    )


# Each surface's own way of turning reasoning off.
REASONING_OFF = {
    "ollama think false": (_ollama, {"think": False}),
    "chat reasoning_effort none": (_chat, {"reasoning_effort": "none"}),
    "responses reasoning.effort none": (_responses, {"reasoning": {"effort": "none"}}),
    "messages thinking disabled": (_messages, {"thinking": {"type": "disabled"}}),
}


@pytest.mark.parametrize("surface", REASONING_OFF)
def test_turning_reasoning_off_reaches_the_remote_as_none(gateway, remote_model, upstream, surface):
    remote_model()
    call, fields = REASONING_OFF[surface]
    call(gateway, **fields)
    assert upstream.last.path == "/v1/chat/completions"
    assert upstream.last.body["reasoning_effort"] == "none"


@pytest.mark.parametrize("surface", REASONING_OFF)
def test_a_model_whose_remote_refuses_none_sends_no_effort(
    gateway, remote_model, upstream, surface
):
    remote_model(reasoning_none=False)
    call, fields = REASONING_OFF[surface]
    call(gateway, **fields)
    assert "reasoning_effort" not in upstream.last.body
    # Other levels still go.
    _chat(gateway, reasoning_effort="low")
    assert upstream.last.body["reasoning_effort"] == "low"


def test_the_setting_is_shown_kept_by_derived_models_and_validated(gateway, remote_model):
    remote_model("refuser", reasoning_none=False)
    shown = requests.post(gateway.url + "/api/show", json={"model": "refuser"}).json()
    assert shown["reasoning_none"] is False
    requests.post(
        gateway.url + "/api/create",
        json={"model": "derived-refuser", "from": "refuser", "stream": False},
    ).raise_for_status()
    derived = requests.post(gateway.url + "/api/show", json={"model": "derived-refuser"}).json()
    assert derived["reasoning_none"] is False
    remote_model("taker")
    assert (
        "reasoning_none"
        not in requests.post(gateway.url + "/api/show", json={"model": "taker"}).json()
    )
    bad = requests.post(
        gateway.url + "/api/create",
        json={"model": "x", "from": "refuser", "reasoning_none": "sometimes", "stream": False},
    )
    assert bad.status_code == 400 and "reasoning_none" in bad.json()["error"]


# What a Chat Completions remote that is not OpenAI's (vLLM, llama.cpp,
# DashScope) receives for each level: its ends are low and high.
@pytest.mark.parametrize(
    "call, fields, sent",
    [
        (_ollama, {"think": "max"}, "high"),
        (_ollama, {"think": "high"}, "high"),
        (_ollama, {"think": True}, "medium"),
        (_ollama, {"think": "low"}, "low"),
        (_chat, {"reasoning_effort": "max"}, "high"),
        (_chat, {"reasoning_effort": "xhigh"}, "high"),
        (_chat, {"reasoning_effort": "minimal"}, "low"),
        (_chat, {"reasoning_effort": "ultra"}, "high"),
        (_responses, {"reasoning": {"effort": "xhigh"}}, "high"),
        (_responses, {"reasoning": {"effort": "minimal"}}, "low"),
        (_messages, {"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}, "high"),
    ],
)
def test_levels_past_the_remotes_ends_go_to_its_nearest(
    gateway, remote_model, upstream, call, fields, sent
):
    remote_model()
    if call is _messages:
        # The anthropic SDK of the tests may not know output_config yet.
        fields = {"extra_body": fields}
    call(gateway, **fields)
    assert upstream.last.body["reasoning_effort"] == sent


def test_an_ollama_remotes_v1_gets_every_level_as_it_is(gateway, remote_model, upstream):
    # Ollama's /v1 takes none..max and maps them to think itself.
    remote_model(remote_type="ollama", path="")
    for effort in ("none", "minimal", "xhigh", "max"):
        upstream.reply(Reply(json=completion()))
        _chat(gateway, reasoning_effort=effort)
        assert upstream.last.path == "/v1/chat/completions"
        assert upstream.last.body["reasoning_effort"] == effort


def test_ollama_remotes_get_think_natively(gateway, remote_model, upstream):
    remote_model(remote_type="ollama", path="")
    for think in (False, "max"):
        _ollama(gateway, think=think)
        assert upstream.last.path == "/api/chat"
        assert upstream.last.body["think"] == think


def test_think_refuses_other_values_naming_the_field(gateway, remote_model, upstream):
    remote_model()
    answer = requests.post(
        gateway.url + "/api/chat", json={"model": "remote", "messages": HI, "think": "ultra"}
    )
    assert answer.status_code == 400
    assert "think" in answer.json()["error"] and "max" in answer.json()["error"]


@pytest.mark.parametrize(
    "asked, sent", [("none", "none"), ("minimal", "minimal"), ("xhigh", "xhigh"), ("max", "xhigh")]
)
@pytest.mark.parametrize(
    "host",
    ["https://api.openai.com/v1", "https://contoso.openai.azure.com/openai/deployments/gpt-5"],
)
def test_openai_and_azure_get_their_own_scale_and_max_as_xhigh(host, asked, sent):
    # OpenAI's hosts cannot be faked over loopback (they are recognised by
    # name), so their request is checked as the remote client prepares it.
    from app.remotes.openai import OpenAIRemote

    remote = OpenAIRemote(None, host, azure_api_version="2024-10-21")
    assert remote.prepare({"reasoning_effort": asked})["reasoning_effort"] == sent
