"""Ollama's model management API and /v1/models, on SQLite and PostgreSQL."""

import json

import pytest

from tests.support.models import create_model

SEED_CREATE = {
    "name": "dashscope-model",
    "from": "qwen-plus",
    "remote_host": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "remote_type": "openai",
    "remote_api_key": "sk-your-api-key-here",
}


def ndjson(response):
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def create(client, **fields):
    return create_model(client, **{**SEED_CREATE, **fields})


def test_create_streams_status_lines_ending_in_success(client):
    response = client.post("/api/create", data=json.dumps(SEED_CREATE))
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    lines = ndjson(response)
    assert len(lines) > 1
    assert lines[-1] == {"status": "success"}


def test_create_without_stream_returns_one_object(client):
    response = create(client)
    assert response.get_json() == {"status": "success"}


def test_create_accepts_model_as_well_as_name(client):
    create(client, name=None, model="from-python")
    assert client.post("/api/show", json={"model": "from-python"}).status_code == 200


def test_remote_type_defaults_to_ollama_and_key_is_optional(client):
    create(client, remote_type=None, remote_api_key=None, name="internal")
    assert (
        client.post("/api/show", json={"model": "internal"}).get_json()["remote_type"] == "ollama"
    )


def test_tags_list_normalised_names_with_remote_fields(client):
    create(client)
    models = client.get("/api/tags").get_json()["models"]
    assert [m["name"] for m in models] == ["dashscope-model:latest"]
    assert models[0]["model"] == "dashscope-model:latest"
    assert models[0]["remote_model"] == "qwen-plus"
    assert models[0]["remote_host"] == SEED_CREATE["remote_host"]
    assert "details" in models[0]


def test_show_carries_model_info_capabilities_and_details(client):
    create(client, system="You are terse.", parameters={"temperature": 0.2, "stop": ["END"]})
    body = client.post("/api/show", json={"model": "dashscope-model:latest"}).get_json()
    assert body["remote_model"] == "qwen-plus"
    assert body["remote_host"] == SEED_CREATE["remote_host"]
    assert isinstance(body["model_info"], dict)
    assert "completion" in body["capabilities"] and "tools" in body["capabilities"]
    assert "parent_model" in body["details"]
    assert body["system"] == "You are terse."
    assert "temperature 0.2" in body["parameters"]
    assert 'stop "END"' in body["parameters"]
    assert 'SYSTEM """You are terse."""' in body["modelfile"]


def test_name_and_name_latest_reach_the_same_model(client):
    create(client)
    plain = client.post("/api/show", json={"name": "dashscope-model"}).get_json()
    tagged = client.post("/api/show", json={"name": "dashscope-model:latest"}).get_json()
    assert plain == tagged


def test_derived_model_inherits_remote_and_overrides_defaults(client):
    create(client, parameters={"temperature": 0.2, "top_p": 0.9}, system="base")
    response = client.post(
        "/api/create",
        json={
            "model": "careful",
            "from": "dashscope-model",
            "system": "Be careful.",
            "parameters": {"temperature": 0.0},
            "stream": False,
        },
    )
    assert response.status_code == 200, response.get_json()
    body = client.post("/api/show", json={"model": "careful"}).get_json()
    assert body["remote_model"] == "qwen-plus"
    assert body["remote_host"] == SEED_CREATE["remote_host"]
    assert body["remote_type"] == "openai"
    assert body["details"]["parent_model"] == "dashscope-model:latest"
    assert body["system"] == "Be careful."
    assert "temperature 0" in body["parameters"] and "top_p 0.9" in body["parameters"]


def test_creating_an_existing_name_replaces_it(client):
    create(client)
    create(client, **{"from": "qwen-max"})
    models = client.get("/api/tags").get_json()["models"]
    assert len(models) == 1
    assert models[0]["remote_model"] == "qwen-max"


def test_delete_then_gone(client):
    create(client)
    assert client.delete("/api/delete", json={"model": "dashscope-model"}).status_code == 200
    assert client.get("/api/tags").get_json() == {"models": []}
    response = client.delete("/api/delete", json={"model": "dashscope-model"})
    assert response.status_code == 404
    assert response.get_json() == {"error": "model 'dashscope-model' not found"}


def test_copy_makes_an_independent_model(client):
    create(client)
    response = client.post("/api/copy", json={"source": "dashscope-model", "destination": "twin"})
    assert response.status_code == 200
    client.delete("/api/delete", json={"model": "dashscope-model"})
    body = client.post("/api/show", json={"model": "twin"}).get_json()
    assert body["remote_model"] == "qwen-plus"


def test_copy_of_unknown_model_is_404(client):
    response = client.post("/api/copy", json={"source": "ghost", "destination": "twin"})
    assert response.status_code == 404
    assert response.get_json() == {"error": "model 'ghost' not found"}


def test_show_unknown_model_is_404(client):
    response = client.post("/api/show", json={"model": "ghost"})
    assert response.status_code == 404
    assert response.get_json() == {"error": "model 'ghost' not found"}


def test_ps_lists_no_loaded_models(client):
    create(client)
    assert client.get("/api/ps").get_json() == {"models": []}


def test_version_is_at_least_what_codex_requires(client):
    version = client.get("/api/version").get_json()["version"]
    assert tuple(int(p) for p in version.split(".")) >= (0, 13, 4)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_root_says_ollama_is_running(client, method):
    response = client.open("/", method=method)
    assert response.status_code == 200
    if method == "GET":
        assert response.get_data(as_text=True) == "Ollama is running"


def test_v1_models_lists_and_gets(client):
    create(client)
    listing = client.get("/v1/models").get_json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["dashscope-model:latest"]
    model = client.get("/v1/models/dashscope-model").get_json()
    assert model["id"] == "dashscope-model:latest" and model["object"] == "model"
    assert isinstance(model["created"], int) and model["owned_by"]


def test_v1_unknown_model_is_openai_shaped_404(client):
    response = client.get("/v1/models/ghost")
    assert response.status_code == 404
    assert response.get_json() == {
        "error": {
            "message": "model 'ghost' not found",
            "type": "not_found_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


@pytest.mark.parametrize("path", ["/api/pull", "/api/push"])
def test_pull_and_push_answer_a_clear_error(client, path):
    create(client)
    response = client.post(path, json={"model": "dashscope-model"})
    assert response.status_code == 400
    assert "remote models only" in response.get_json()["error"]


def test_create_without_remote_host_or_existing_model_is_refused(client):
    response = client.post("/api/create", json={"model": "local", "from": "llama3"})
    assert response.status_code == 400
    assert "no local weights" in response.get_json()["error"]
    response = client.post("/api/create", json={"model": "local"})
    assert response.status_code == 400
    assert "remote_host" in response.get_json()["error"]


def test_no_response_contains_the_key(client):
    key = "sk-relay-test-9f8e7d6c5b4a"
    create(client, remote_api_key=key)
    client.post("/api/copy", json={"source": "dashscope-model", "destination": "twin"})
    bodies = [
        client.get("/api/tags"),
        client.post("/api/show", json={"model": "dashscope-model"}),
        client.post("/api/show", json={"model": "twin"}),
        client.get("/v1/models"),
        client.get("/v1/models/twin"),
        client.post("/api/create", json=dict(SEED_CREATE, remote_api_key=key)),
    ]
    for response in bodies:
        text = response.get_data(as_text=True)
        assert key not in text
        assert key[3:15] not in text
