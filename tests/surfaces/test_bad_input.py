"""Bad input gets a 4xx that names the problem: never a 500, never a traceback."""

import json

import pytest
import requests

GOOD = {
    "name": "m",
    "from": "qwen-plus",
    "remote_type": "openai",
    "remote_host": "https://dashscope.aliyuncs.com/compatible-mode/v1",
}


def error_of(response, status=400):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert "Traceback" not in body["error"]
    return body["error"]


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("name", 42, "name: Not a valid string"),
        ("model", ["m"], "model: Not a valid string"),
        ("from", 7, "from: Not a valid string"),
        ("remote_host", {"url": "x"}, "remote_host: Not a valid string"),
        ("remote_api_key", 12345, "remote_api_key: Not a valid string"),
        ("system", False, "system: Not a valid string"),
        ("parameters", "temperature=1", "parameters: Not a valid mapping"),
        ("stream", "sometimes", "stream: Not a valid boolean"),
    ],
)
def test_create_wrong_types(client, field, value, expected):
    body = dict(GOOD, **{field: value})
    assert expected in error_of(client.post("/api/create", json=body))


def test_create_missing_name(client):
    body = {k: v for k, v in GOOD.items() if k != "name"}
    assert "model: Missing data for required field" in error_of(
        client.post("/api/create", json=body)
    )


def test_create_missing_from_with_remote_host(client):
    body = {k: v for k, v in GOOD.items() if k != "from"}
    assert "from:" in error_of(client.post("/api/create", json=body))


def test_create_unknown_remote_type(client):
    message = error_of(client.post("/api/create", json=dict(GOOD, remote_type="anthropic")))
    assert "remote_type: Must be one of: ollama, openai" in message


@pytest.mark.parametrize(
    "url",
    [
        "dashscope.aliyuncs.com/v1",
        "ftp://example.com/v1",
        "https://",
        "not a url",
        "https://example.com:99999/v1",
    ],
)
def test_create_malformed_remote_host(client, url):
    assert "remote_host:" in error_of(client.post("/api/create", json=dict(GOOD, remote_host=url)))


def test_create_remote_host_with_credentials(client):
    message = error_of(
        client.post(
            "/api/create", json=dict(GOOD, remote_host="https://user:sk-secret@example.com/v1")
        )
    )
    assert "remote_host: must not contain credentials" in message
    assert "sk-secret" not in message


@pytest.mark.parametrize(
    "name", ["", "has space", "../etc/passwd", "a:b:c", "-dash", "x" * 300, "a/b/c/d"]
)
def test_create_invalid_model_names(client, name):
    assert "is not a valid model name" in error_of(
        client.post("/api/create", json=dict(GOOD, name=name))
    )


@pytest.mark.parametrize("field", ["files", "quantize", "adapters"])
def test_create_with_local_weight_fields(client, field):
    message = error_of(client.post("/api/create", json=dict(GOOD, **{field: {"a": "b"}})))
    assert f"{field}: this server runs no local weights" in message


@pytest.mark.parametrize(
    "path, method",
    [
        ("/api/create", "POST"),
        ("/api/show", "POST"),
        ("/api/delete", "DELETE"),
        ("/api/copy", "POST"),
        ("/api/pull", "POST"),
    ],
)
@pytest.mark.parametrize(
    "data, expected",
    [
        ("{not json", "request body is not valid JSON"),
        ("", "request body is empty"),
        ("[1, 2]", "request body must be a JSON object"),
        ('"model"', "request body must be a JSON object"),
    ],
)
def test_non_json_bodies(client, path, method, data, expected):
    response = client.open(
        path, method=method, data=data, headers={"Content-Type": "application/json"}
    )
    assert expected in error_of(response)


def test_oversized_body(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/api/create", json=dict(GOOD, system="x" * 4096))
    assert "request body too large" in error_of(response, 413)
    assert "RELAY_MAX_BODY_BYTES" in error_of(response, 413)


def test_show_invalid_name(client):
    assert "model: is not a valid model name" in error_of(
        client.post("/api/show", json={"model": "no spaces allowed"})
    )


def test_show_missing_model(client):
    assert "model: Missing data for required field" in error_of(
        client.post("/api/show", json={"verbose": True})
    )


def test_copy_missing_destination(client):
    assert "destination: Missing data for required field" in error_of(
        client.post("/api/copy", json={"source": "m"})
    )


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
    for response in (
        client.post("/api/show", json={"model": "ghost"}),
        client.delete("/api/delete", json={"model": "ghost"}),
        client.post("/api/copy", json={"source": "ghost", "destination": "x"}),
    ):
        assert error_of(response, 404) == "model 'ghost' not found"


@pytest.mark.parametrize(
    "url",
    [
        "https://[zz]/v1",
        "https://exa mple.com/v1",
        "https://example.com:0/v1",
        "https://ex_ample..com/v1",
    ],
)
def test_create_remote_host_that_is_not_a_url(client, url):
    assert "remote_host: is not a valid URL" in error_of(
        client.post("/api/create", json=dict(GOOD, remote_host=url))
    )


@pytest.mark.parametrize("key", ["sk-abc\n", "sk abc", "sk-\u2019abc"])
def test_create_api_key_that_cannot_travel_in_a_header(client, key):
    message = error_of(client.post("/api/create", json=dict(GOOD, remote_api_key=key)))
    assert "remote_api_key: must be printable ASCII" in message
    assert key.strip() not in message


@pytest.mark.parametrize(
    "parameters, expected",
    [
        ({"num_predict": "x"}, "num_predict must be a number"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"seed": True}, "seed must be a number"),
        ({"stop": 5}, "stop must be a string or a list of strings"),
    ],
)
def test_create_parameters_of_the_wrong_type(client, parameters, expected):
    assert f"parameters: {expected}" in error_of(
        client.post("/api/create", json=dict(GOOD, parameters=parameters))
    )


def test_nan_and_infinity_are_not_json(client):
    response = client.post("/api/create", data='{"name": "m", "parameters": {"temperature": NaN}}')
    assert "not valid JSON" in error_of(response)


# --- Deep nesting and parse errors, on every surface -------------------------

DEPTH_LIMIT = 128


def surface_error(response, status=400):
    """The message of an error in the shape of the surface that answered."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.get_json()
    if response.request.path.startswith("/v1/messages"):
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        return body["error"]["message"]
    if response.request.path.startswith("/v1/"):
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["type"] == "invalid_request_error"
        return body["error"]["message"]
    assert set(body) == {"error"}
    return body["error"]


def deep_array(levels):
    # Built as text: the test's own json.dumps would recurse as deep.
    return "[" * levels + "]" * levels


def deep_object(levels):
    return '{"a": ' * (levels - 1) + "{}" + "}" * (levels - 1)


# (path, the body around the deep part): a request each surface would take.
DEEP_BODIES = [
    ("/api/chat", '{"model": "m", "messages": %s}', deep_array),
    (
        "/api/chat",
        '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": '
        '[{"type": "function", "function": {"name": "f", "parameters": %s}}]}',
        deep_object,
    ),
    ("/api/generate", '{"model": "m", "prompt": "hi", "format": %s}', deep_object),
    ("/api/embed", '{"model": "m", "input": %s}', deep_array),
    ("/api/create", '{"name": "m", "from": "x", "parameters": %s}', deep_object),
    ("/v1/chat/completions", '{"model": "m", "messages": %s}', deep_array),
    (
        "/v1/chat/completions",
        '{"model": "m", "messages": [{"role": "user", "content": "hi"}], '
        '"tools": [{"type": "function", "function": '
        '{"name": "f", "parameters": %s}}]}',
        deep_object,
    ),
    ("/v1/embeddings", '{"model": "m", "input": %s}', deep_array),
    ("/v1/responses", '{"model": "m", "input": [{"role": "user", "content": %s}]}', deep_array),
    ("/v1/responses", '{"model": "m", "input": %s}', deep_array),
    (
        "/v1/responses",
        '{"model": "m", "input": "hi", "tools": '
        '[{"type": "function", "name": "f", "parameters": %s}]}',
        deep_object,
    ),
    ("/v1/messages", '{"model": "m", "max_tokens": 10, "messages": %s}', deep_array),
    (
        "/v1/messages",
        '{"model": "m", "max_tokens": 10, "messages": [{"role": "user", '
        '"content": "hi"}], "tools": [{"name": "f", "input_schema": %s}]}',
        deep_object,
    ),
]


# Just over the limit; just under Python's recursion limit (where json.dumps
# and marshmallow used to fail after parsing); far past it (json.loads failed).
@pytest.mark.parametrize("levels", [DEPTH_LIMIT + 1, 990, 50_000])
@pytest.mark.parametrize("path, template, nest", DEEP_BODIES)
def test_deep_bodies_are_400_naming_the_limit(client, path, template, nest, levels):
    response = client.post(
        path, data=template % nest(levels), headers={"Content-Type": "application/json"}
    )
    message = surface_error(response)
    assert f"request body nests deeper than {DEPTH_LIMIT} levels (the limit)" == message


def test_deep_bodies_over_the_wire_on_every_surface(gateway):
    # Through gunicorn's gevent workers, as a client sends them: 50,000 levels
    # were a RecursionError (a 500) on every surface.
    for path, template, nest in DEEP_BODIES:
        response = requests.post(
            gateway.url + path,
            data=template % nest(50_000),
            timeout=30,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400, (path, response.text[:300])
        body = response.json()
        message = body["error"] if path.startswith("/api/") else body["error"]["message"]
        assert message == f"request body nests deeper than {DEPTH_LIMIT} levels (the limit)"
    assert "Traceback" not in gateway.log()


@pytest.mark.parametrize(
    "path, body, deep_part",
    [
        # The request object is level 1, so the parameters start at level 5 ...
        (
            "/v1/chat/completions",
            '{"model": "deep", "messages": [{"role": "user", "content": "hi"}], "tools": '
            '[{"type": "function", "function": {"name": "f", "parameters": %s}}]}',
            lambda tool: tool["function"]["parameters"],
        ),
        # ... and at level 4 here.
        (
            "/v1/responses",
            '{"model": "deep", "input": "hi", "store": false, "tools": '
            '[{"type": "function", "name": "f", "parameters": %s}]}',
            lambda tool: tool["function"]["parameters"],
        ),
    ],
)
def test_a_body_nested_exactly_to_the_limit_is_served(client, upstream, path, body, deep_part):
    created = client.post(
        "/api/create",
        json={
            "name": "deep",
            "from": "remote-model",
            "remote_type": "openai",
            "remote_host": upstream.url + "/v1",
        },
    )
    assert created.status_code == 200, created.get_data(as_text=True)
    start = 5 if path == "/v1/chat/completions" else 4
    parameters = deep_object(DEPTH_LIMIT - start + 1)

    response = client.post(
        path, data=body % parameters, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    (tool,) = upstream.last.body["tools"]
    assert deep_part(tool) == json.loads(parameters)

    one_more = deep_object(DEPTH_LIMIT - start + 2)
    response = client.post(path, data=body % one_more, headers={"Content-Type": "application/json"})
    assert "nests deeper than 128 levels" in surface_error(response)


def test_brackets_inside_strings_do_not_count(client, upstream):
    # A prompt full of brackets (code, say) is text, not nesting.
    text = "[" * 5000 + '{\\"' * 1000
    body = '{"name": "m", "from": "x", "remote_host": "https://example.com/v1", "system": "%s"}'
    response = client.post(
        "/api/create", data=body % text, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_invalid_utf8_names_the_byte_and_its_offset(client, path):
    data = b'{"model": "m", "messages": [{"role": "user", "content": "caf\xe9"}]}'
    message = surface_error(client.post(path, data=data))
    assert message == (
        "request body is not valid UTF-8: byte 0xe9 at offset "
        f"{data.index(b'caf') + 3} (invalid continuation byte)"
    )


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_syntax_errors_say_what_and_where(client, path):
    data = '{\n  "model": "m",\n  "messages": []\n  "stream": false\n}'
    message = surface_error(client.post(path, data=data))
    assert message == ("request body is not valid JSON: Expecting ',' delimiter (line 4, column 3)")


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_overlong_numbers_say_so(client, path):
    data = '{"model": "m", "messages": [], "seed": 1%s}' % ("0" * 5000)
    message = surface_error(client.post(path, data=data))
    assert message == (
        "request body is not valid JSON: a number has too many digits (more than 4300)"
    )


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_nan_and_infinity_have_their_own_message(client, path, constant):
    data = '{"model": "m", "messages": [], "temperature": %s}' % constant
    assert surface_error(client.post(path, data=data)) == (
        "request body is not valid JSON (NaN and Infinity are not JSON)"
    )
