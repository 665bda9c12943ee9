"""What IDE clients read to size prompts and pick features: context length and
capabilities in /api/show and /api/tags (VS Code Copilot assumes 4,096 tokens
without a context length; Open WebUI sends images only to `vision` models)."""

import ollama
import requests

from tests.surfaces.admin.test_models_api import SEED_CREATE, create


def shown(client, name="dashscope-model"):
    return client.post("/api/show", json={"model": name}).get_json()


def tags_entry(client, name="dashscope-model:latest"):
    (entry,) = [m for m in client.get("/api/tags").get_json()["models"] if m["name"] == name]
    return entry


def test_a_plain_model_gets_a_large_default_context_and_chat_capabilities(client):
    create(client)
    body = shown(client)
    architecture = body["model_info"]["general.architecture"]
    assert body["model_info"][f"{architecture}.context_length"] == 131072
    assert body["capabilities"] == ["completion", "tools", "thinking"]
    entry = tags_entry(client)
    assert entry["capabilities"] == ["completion", "tools", "thinking"]
    assert entry["details"]["context_length"] == 131072


def test_context_length_and_capabilities_set_at_create_are_shown(client):
    create(client, context_length=32768, capabilities=["vision", "completion", "tools"])
    body = shown(client)
    assert body["model_info"]["remote.context_length"] == 32768
    assert body["capabilities"] == ["completion", "tools", "vision"]
    assert tags_entry(client)["capabilities"] == ["completion", "tools", "vision"]


def test_num_ctx_in_parameters_still_sets_the_context_length(client):
    create(client, parameters={"num_ctx": 65536})
    assert shown(client)["model_info"]["remote.context_length"] == 65536
    assert "num_ctx 65536" in shown(client)["parameters"]


def test_an_embedding_model_says_so(client):
    create(client, name="embedder", capabilities=["embedding"])
    assert shown(client, "embedder")["capabilities"] == ["embedding"]


def test_derived_and_copied_models_keep_the_metadata_unless_they_set_their_own(client):
    create(client, context_length=200000, capabilities=["completion", "vision"])
    create(
        client,
        name="derived",
        remote_host=None,
        remote_type=None,
        remote_api_key=None,
        **{"from": "dashscope-model"},
    )
    assert shown(client, "derived")["model_info"]["remote.context_length"] == 200000
    assert shown(client, "derived")["capabilities"] == ["completion", "vision"]
    create(
        client,
        name="narrow",
        remote_host=None,
        remote_type=None,
        remote_api_key=None,
        context_length=8192,
        **{"from": "dashscope-model"},
    )
    assert shown(client, "narrow")["model_info"]["remote.context_length"] == 8192
    client.post("/api/copy", json={"source": "dashscope-model", "destination": "twin"})
    assert shown(client, "twin")["capabilities"] == ["completion", "vision"]


def test_bad_metadata_is_a_400_naming_the_field(client):
    for field, value in (
        ("context_length", 0),
        ("context_length", "big"),
        ("capabilities", ["telepathy"]),
        ("capabilities", "vision"),
    ):
        response = client.post(
            "/api/create", json=dict(SEED_CREATE, stream=False, **{field: value})
        )
        assert response.status_code == 400, (field, value)
        assert field in response.get_json()["error"]


def test_ollama_python_reads_them(relay, upstream):
    # ollama-python's create() knows no remote fields: create over HTTP.
    assert (
        requests.post(
            relay.url + "/api/create",
            json={
                "model": "vision-model",
                "from": "qwen-vl",
                "stream": False,
                "remote_host": upstream.url + "/v1",
                "remote_type": "openai",
                "context_length": 262144,
                "capabilities": ["completion", "vision"],
            },
        ).status_code
        == 200
    )
    client = ollama.Client(host=relay.url)
    info = client.show("vision-model")
    assert info.modelinfo["remote.context_length"] == 262144
    assert info.capabilities == ["completion", "vision"]
    # ollama-python 0.6's list() drops fields it does not know; the wire has them.
    (listed,) = [
        m
        for m in requests.get(relay.url + "/api/tags").json()["models"]
        if m["model"] == "vision-model:latest"
    ]
    assert listed["capabilities"] == ["completion", "vision"]


def test_version_is_the_ollama_release_with_capabilities_in_tags(client):
    version = client.get("/api/version").get_json()["version"]
    assert tuple(int(p) for p in version.split(".")) >= (0, 30, 0)


def test_a_model_with_tools_shows_a_template_that_mentions_them(client):
    # LiteLLM (and DSPy and CrewAI through it) sends native tools to an
    # Ollama model only when /api/show's template mentions tools.
    create(client)
    create(client, name="plain", capabilities=["completion"])
    template = shown(client)["template"]
    assert "{{ if .Tools }}" in template.replace("{{-", "{{")
    assert "{{ .System }}" in template and "range .Messages" in template
    assert "tools" not in shown(client, "plain")["template"].lower()
