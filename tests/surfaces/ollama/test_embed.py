"""/api/embed `truncate` and `dimensions` (Ollama 0.11.11), with the real
ollama client, to both kinds of remote."""

import ollama
import pytest
import requests


def test_ollama_remotes_get_truncate_and_dimensions_natively(gateway, remote_model, upstream):
    remote_model("far", remote_type="ollama", path="")
    ollama.Client(host=gateway.url).embed(model="far", input="a", truncate=False, dimensions=2)
    assert upstream.last.path == "/api/embed"
    assert (upstream.last.body["truncate"], upstream.last.body["dimensions"]) == (False, 2)


def test_openai_remotes_get_dimensions(gateway, remote_model, upstream):
    remote_model()
    answer = ollama.Client(host=gateway.url).embed(
        model="remote", input=["a", "b"], truncate=True, dimensions=3
    )
    assert answer.embeddings == [[0.1, 0.2, 0.3]] * 2
    # Chat Completions remotes have no truncate: what they do past their context is theirs.
    assert upstream.last.body == {"model": "remote-model", "input": ["a", "b"], "dimensions": 3}


@pytest.mark.parametrize(
    "field, value", [("truncate", "yes please"), ("dimensions", 0), ("dimensions", 2.5)]
)
def test_bad_values_are_a_400_naming_the_field(gateway, remote_model, upstream, field, value):
    remote_model()
    answer = requests.post(
        gateway.url + "/api/embed", json={"model": "remote", "input": "a", field: value}
    )
    assert answer.status_code == 400
    assert field in answer.json()["error"]
    assert upstream.requests == []
