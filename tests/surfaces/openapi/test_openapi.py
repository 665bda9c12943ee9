"""GET /openapi.json: a valid OpenAPI 3.1 document that describes every route,
and that the relay keeps to under schemathesis (tests/support/fuzzing.py)."""

import re
import time

import jsonschema
import pytest
import requests
from schemathesis.specs.openapi.definitions import OPENAPI_31

from app import create_app
from tests.support import fuzzing
from tests.support.config import relay_settings
from tests.support.servers import GunicornServer

# Bounded so that the whole test stays near a minute on two cores; ops/fuzz/run
# sends many more. The seed makes a failure reproducible.
EXAMPLES = 15
SEED = 20260101


def _flask_routes(tmp_path):
    """(METHOD, /path/{param}) of every route the app serves."""
    app = create_app(relay_settings(tmp_path, f"sqlite:///{tmp_path}/routes.sqlite3"))
    routes = set()
    for rule in app.url_map.iter_rules():
        # The console's pages are HTML for browsers, not API: not documented.
        if rule.endpoint == "static" or rule.rule.startswith("/console"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        # Flask adds HEAD and OPTIONS to every route by itself.
        routes |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_document_is_valid_openapi_and_describes_every_route(relay_with, tmp_path):
    relay = relay_with(RELAY_ADMIN_TOKEN=fuzzing.ADMIN_TOKEN)
    # Public, like /api/version: no key.
    response = requests.get(relay.url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()

    # The OpenAPI 3.1 meta-schema (as schemathesis ships it) for the document's
    # structure; the JSON Schema 2020-12 meta-schema for each schema in it.
    jsonschema.Draft202012Validator(OPENAPI_31).validate(document)
    for name, schema in document["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    assert document["openapi"] == "3.1.0"
    version = requests.get(relay.url + "/api/version", timeout=10).json()["version"]
    assert document["info"]["version"] == version

    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    served = _flask_routes(tmp_path)
    assert served - documented == set(), "routes missing from app/surfaces/openapi/operations.py"
    assert documented - served == set(), "documented routes the app does not serve"

    # Every operation says what it answers, errors in its surface's shape
    # (/readyz's 503 is its own answer: unavailable, and why).
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "403" in operation["responses"], (method, path)
            for status, answer in operation["responses"].items():
                if status[0] in "45" and path != "/readyz":
                    schema = answer["content"]["application/json"]["schema"]["$ref"]
                    shape = (
                        "AnthropicError"
                        if path.startswith("/v1/messages")
                        else "OpenAIError"
                        if path.startswith("/v1/")
                        else "OllamaError"
                    )
                    assert schema.endswith("/" + shape), (method, path, status)
    security = document["components"]["securitySchemes"]
    assert security["bearer"]["scheme"] == "bearer"
    assert {security[s]["name"] for s in ("xApiKey", "apiKey")} == {"x-api-key", "api-key"}


def test_document_is_built_once_per_app(relay_with):
    relay = relay_with(workers=1)
    first = requests.get(relay.url + "/openapi.json", timeout=10)
    second = requests.get(relay.url + "/openapi.json", timeout=10)
    assert first.content == second.content


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_departure_from_the_document(
    settings, upstream, tmp_path
):
    # On each database: PostgreSQL refuses values (NUL, 64-bit numbers) that SQLite takes.
    relay = GunicornServer(dict(settings, **fuzzing.relay_settings()), tmp_path)
    try:
        fuzzing.create_models(relay.url, upstream.url)
        started = time.monotonic()
        # Each request has its own timeout (a hang fails that case); this bounds the run.
        result = fuzzing.run(relay.url, EXAMPLES, SEED, tmp_path / "report", workers=2, timeout=240)
        took = time.monotonic() - started
    finally:
        relay.stop()
    assert result.returncode == 0, result.stdout[-20000:]
    assert "generated" in result.stdout, result.stdout
    assert "Traceback" not in relay.log(), relay.log()[-5000:]
    print(f"schemathesis: {took:.1f} s")
