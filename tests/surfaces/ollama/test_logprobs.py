"""logprobs and top_logprobs on /api/chat (Ollama 0.12.11), to and from a
Chat Completions remote, whole and streamed, with the real ollama client."""

import ollama
import pytest
import requests

from tests.support.fake_upstream import Reply, chunk, completion

HI = [{"role": "user", "content": "hi"}]


def token(text, logprob, top=()):
    # Chat Completions' shape: bytes always, top_logprobs always (maybe empty).
    return {
        "token": text,
        "logprob": logprob,
        "bytes": list(text.encode()),
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top],
    }


def ollama_token(text, logprob, top=()):
    # Ollama's shape: bytes, and top_logprobs only when there are any.
    entry = {"token": text, "logprob": logprob, "bytes": list(text.encode())}
    if top:
        entry["top_logprobs"] = [
            {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top
        ]
    return entry


def with_logprobs(answer, content):
    answer["choices"][0]["logprobs"] = {"content": content, "refusal": None}
    return answer


def test_whole_answer_carries_ollamas_logprobs(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            json=with_logprobs(
                completion(content="Hi there"),
                [token("Hi", -0.25, [("Hi", -0.25), ("Hey", -1.5)]), token(" there", -0.5)],
            )
        )
    )
    answer = ollama.Client(host=gateway.url).chat(
        model="remote", messages=HI, logprobs=True, top_logprobs=2
    )
    assert upstream.last.body["logprobs"] is True
    assert upstream.last.body["top_logprobs"] == 2
    assert answer.logprobs[0].token == "Hi"
    assert answer.logprobs[0].top_logprobs[1].token == "Hey"
    # The wire, exactly: beside `message`, Ollama's fields only.
    upstream.reply(
        Reply(json=with_logprobs(completion(content="Hi"), [token("Hi", -0.25, [("Hi", -0.25)])]))
    )
    raw = requests.post(
        gateway.url + "/api/chat",
        json={"model": "remote", "messages": HI, "stream": False, "logprobs": True},
    ).json()
    assert raw["logprobs"] == [ollama_token("Hi", -0.25, [("Hi", -0.25)])]
    assert "logprobs" not in raw["message"]


def test_each_streamed_line_carries_its_tokens_logprobs(gateway, remote_model, upstream):
    remote_model()

    def piece(text, logprob):
        part = chunk({"content": text})
        part["choices"][0]["logprobs"] = {"content": [token(text, logprob)], "refusal": None}
        return part

    upstream.reply(
        Reply(
            sse=[
                chunk({"role": "assistant", "content": ""}),
                piece("Hi", -0.1),
                piece(" you", -0.2),
                chunk({}, finish_reason="stop"),
                chunk(choices=False, usage={"prompt_tokens": 3, "completion_tokens": 2}),
            ]
        )
    )
    lines = list(
        ollama.Client(host=gateway.url).chat(
            model="remote", messages=HI, stream=True, logprobs=True
        )
    )
    assert upstream.last.body["logprobs"] is True
    assert "top_logprobs" not in upstream.last.body
    texts = [(line.message.content, line.logprobs) for line in lines if line.message.content]
    assert [(text, [lp.token for lp in lps]) for text, lps in texts] == [
        ("Hi", ["Hi"]),
        (" you", [" you"]),
    ]
    assert texts[1][1][0].logprob == -0.2
    assert lines[-1].done and not lines[-1].logprobs


def test_without_logprobs_nothing_is_asked_or_answered(gateway, remote_model, upstream):
    remote_model()
    # Ollama ignores top_logprobs unless logprobs is true.
    raw = requests.post(
        gateway.url + "/api/chat",
        json={"model": "remote", "messages": HI, "stream": False, "top_logprobs": 3},
    ).json()
    assert "logprobs" not in upstream.last.body and "top_logprobs" not in upstream.last.body
    assert "logprobs" not in raw


def test_a_remotes_malformed_logprobs_are_dropped(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            json=with_logprobs(
                completion(content="Hi"),
                [
                    "junk",
                    {"token": 3, "logprob": -1},
                    {"token": "Hi", "logprob": -0.5, "top_logprobs": 7},
                ],
            )
        )
    )
    raw = requests.post(
        gateway.url + "/api/chat",
        json={"model": "remote", "messages": HI, "stream": False, "logprobs": True},
    ).json()
    assert raw["logprobs"] == [{"token": "Hi", "logprob": -0.5}]


@pytest.mark.parametrize("value", [21, -1, "two"])
def test_top_logprobs_out_of_range_is_a_400_naming_it(gateway, remote_model, upstream, value):
    remote_model()
    answer = requests.post(
        gateway.url + "/api/chat",
        json={"model": "remote", "messages": HI, "logprobs": True, "top_logprobs": value},
    )
    assert answer.status_code == 400
    assert "top_logprobs" in answer.json()["error"]
    assert upstream.requests == []


def test_ollama_remotes_get_logprobs_natively(gateway, remote_model, upstream):
    remote_model(remote_type="ollama", path="")
    requests.post(
        gateway.url + "/api/chat",
        json={
            "model": "remote",
            "messages": HI,
            "stream": False,
            "logprobs": True,
            "top_logprobs": 4,
        },
    )
    assert upstream.last.path == "/api/chat"
    assert (upstream.last.body["logprobs"], upstream.last.body["top_logprobs"]) == (True, 4)
