"""/v1/embeddings `dimensions` and `encoding_format` (Ollama 0.12.7), with the
openai SDK, against the fake remote; answers checked against OpenAI's spec."""

import base64
import struct

import openai
import pytest
import requests

from tests.support.fake_upstream import Reply
from tests.support.openai_schema import EMBEDDINGS, validate

VECTOR = [0.1, 0.2, 0.3]


def sdk(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1/", api_key="-", max_retries=0)


def packed(vector):
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def floats(text):
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def post(gateway, **body):
    answer = requests.post(gateway.url + "/v1/embeddings", json={"model": "remote", **body})
    assert answer.status_code == 200, answer.text
    if body.get("encoding_format") != "base64":
        # The spec types `embedding` as an array: its base64 form is not modelled.
        validate(answer.json(), EMBEDDINGS)
    return answer.json()


def test_base64_is_little_endian_float32_even_when_the_remote_sends_floats(
    gateway, remote_model, upstream
):
    remote_model()
    answer = post(gateway, input=["a", "b"], encoding_format="base64")
    assert upstream.last.body["encoding_format"] == "base64"
    assert [item["embedding"] for item in answer["data"]] == [packed(VECTOR)] * 2
    assert floats(answer["data"][0]["embedding"]) == pytest.approx(VECTOR)
    # The SDK asks for base64 by default and decodes it.
    vectors = sdk(gateway).embeddings.create(model="remote", input="a").data
    assert vectors[0].embedding == pytest.approx(VECTOR)


def test_floats_even_when_the_remote_sends_base64(gateway, remote_model, upstream):
    remote_model()
    upstream.reply(
        Reply(
            json={
                "object": "list",
                "model": "remote-model",
                "data": [{"object": "embedding", "index": 0, "embedding": packed([0.5, -2.0])}],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )
    )
    answer = post(gateway, input="a", encoding_format="float")
    assert answer["data"][0]["embedding"] == [0.5, -2.0]


def test_dimensions_reach_the_remote(gateway, remote_model, upstream):
    remote_model()
    sdk(gateway).embeddings.create(model="remote", input="a", dimensions=2)
    assert upstream.last.body["dimensions"] == 2


@pytest.mark.parametrize(
    "field, value", [("encoding_format", "int8"), ("dimensions", 0), ("dimensions", "2")]
)
def test_bad_values_are_a_400_naming_the_field(gateway, remote_model, upstream, field, value):
    remote_model()
    answer = requests.post(
        gateway.url + "/v1/embeddings", json={"model": "remote", "input": "a", field: value}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == field
    assert upstream.requests == []
