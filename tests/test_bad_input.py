"""Bad input gets a 4xx that names the problem: never a 500, never a traceback."""
import pytest

GOOD = {"name": "m", "from": "qwen-plus", "remote_type": "openai",
        "remote_host": "https://dashscope.aliyuncs.com/compatible-mode/v1"}


def error_of(response, status=400):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert "Traceback" not in body["error"]
    return body["error"]


@pytest.mark.parametrize("field, value, expected", [
    ("name", 42, "name: Not a valid string"),
    ("model", ["m"], "model: Not a valid string"),
    ("from", 7, "from: Not a valid string"),
    ("remote_host", {"url": "x"}, "remote_host: Not a valid string"),
    ("remote_api_key", 12345, "remote_api_key: Not a valid string"),
    ("system", False, "system: Not a valid string"),
    ("parameters", "temperature=1", "parameters: Not a valid mapping"),
    ("stream", "sometimes", "stream: Not a valid boolean"),
])
def test_create_wrong_types(client, field, value, expected):
    body = dict(GOOD, **{field: value})
    assert expected in error_of(client.post("/api/create", json=body))


def test_create_missing_name(client):
    body = {k: v for k, v in GOOD.items() if k != "name"}
    assert "model: Missing data for required field" in error_of(
        client.post("/api/create", json=body))


def test_create_missing_from_with_remote_host(client):
    body = {k: v for k, v in GOOD.items() if k != "from"}
    assert "from:" in error_of(client.post("/api/create", json=body))


def test_create_unknown_remote_type(client):
    message = error_of(client.post("/api/create", json=dict(GOOD, remote_type="anthropic")))
    assert "remote_type: Must be one of: ollama, openai" in message


@pytest.mark.parametrize("url", [
    "dashscope.aliyuncs.com/v1", "ftp://example.com/v1", "https://", "not a url",
    "https://example.com:99999/v1",
])
def test_create_malformed_remote_host(client, url):
    assert "remote_host:" in error_of(client.post("/api/create", json=dict(GOOD, remote_host=url)))


def test_create_remote_host_with_credentials(client):
    message = error_of(client.post("/api/create", json=dict(
        GOOD, remote_host="https://user:sk-secret@example.com/v1")))
    assert "remote_host: must not contain credentials" in message
    assert "sk-secret" not in message


@pytest.mark.parametrize("name", ["", "has space", "../etc/passwd", "a:b:c", "-dash", "x" * 300,
                                  "a/b/c/d"])
def test_create_invalid_model_names(client, name):
    assert "is not a valid model name" in error_of(
        client.post("/api/create", json=dict(GOOD, name=name)))


@pytest.mark.parametrize("field", ["files", "quantize", "adapters"])
def test_create_with_local_weight_fields(client, field):
    message = error_of(client.post("/api/create", json=dict(GOOD, **{field: {"a": "b"}})))
    assert f"{field}: this server runs no local weights" in message


@pytest.mark.parametrize("path, method", [
    ("/api/create", "POST"), ("/api/show", "POST"), ("/api/delete", "DELETE"),
    ("/api/copy", "POST"), ("/api/pull", "POST"),
])
@pytest.mark.parametrize("data, expected", [
    ("{not json", "request body is not valid JSON"),
    ("", "request body is empty"),
    ("[1, 2]", "request body must be a JSON object"),
    ('"model"', "request body must be a JSON object"),
])
def test_non_json_bodies(client, path, method, data, expected):
    response = client.open(path, method=method, data=data,
                           headers={"Content-Type": "application/json"})
    assert expected in error_of(response)


def test_oversized_body(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/api/create", json=dict(GOOD, system="x" * 4096))
    assert "request body too large" in error_of(response, 413)
    assert "RELAY_MAX_BODY_BYTES" in error_of(response, 413)


def test_show_invalid_name(client):
    assert "model: is not a valid model name" in error_of(
        client.post("/api/show", json={"model": "no spaces allowed"}))


def test_show_missing_model(client):
    assert "model: Missing data for required field" in error_of(
        client.post("/api/show", json={"verbose": True}))


def test_copy_missing_destination(client):
    assert "destination: Missing data for required field" in error_of(
        client.post("/api/copy", json={"source": "m"}))


def test_unknown_route_and_wrong_method_are_json(client):
    assert "not found" in error_of(client.get("/api/nothing-here"), 404)
    assert "not allowed" in error_of(client.get("/api/create"), 405)


def test_v1_errors_use_the_openai_shape(client):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "not_found_error"


def test_unknown_model_everywhere(client):
    for response in (client.post("/api/show", json={"model": "ghost"}),
                     client.delete("/api/delete", json={"model": "ghost"}),
                     client.post("/api/copy", json={"source": "ghost", "destination": "x"})):
        assert error_of(response, 404) == "model 'ghost' not found"


@pytest.mark.parametrize("url", ["https://[zz]/v1", "https://exa mple.com/v1",
                                 "https://example.com:0/v1", "https://ex_ample..com/v1"])
def test_create_remote_host_that_is_not_a_url(client, url):
    assert "remote_host: is not a valid URL" in error_of(
        client.post("/api/create", json=dict(GOOD, remote_host=url)))


@pytest.mark.parametrize("key", ["sk-abc\n", "sk abc", "sk-\u2019abc"])
def test_create_api_key_that_cannot_travel_in_a_header(client, key):
    message = error_of(client.post("/api/create", json=dict(GOOD, remote_api_key=key)))
    assert "remote_api_key: must be printable ASCII" in message
    assert key.strip() not in message


@pytest.mark.parametrize("parameters, expected", [
    ({"num_predict": "x"}, "num_predict must be a number"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"seed": True}, "seed must be a number"),
    ({"stop": 5}, "stop must be a string or a list of strings"),
])
def test_create_parameters_of_the_wrong_type(client, parameters, expected):
    assert f"parameters: {expected}" in error_of(
        client.post("/api/create", json=dict(GOOD, parameters=parameters)))


def test_nan_and_infinity_are_not_json(client):
    response = client.post("/api/create", data='{"name": "m", "parameters": {"temperature": NaN}}')
    assert "not valid JSON" in error_of(response)
