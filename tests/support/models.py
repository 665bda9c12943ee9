"""Creating a model through POST /api/create, on a relay under gunicorn or a
Flask test client: one helper instead of one per file."""

from typing import Any, Protocol

import requests
from flask.testing import FlaskClient
from werkzeug.test import TestResponse


class Served(Protocol):
    """A relay reachable over HTTP (tests.support.servers.GunicornServer)."""

    url: str


def create_model(
    target: Served | FlaskClient,
    name: str = "remote",
    remote_host: str | None = None,
    *,
    expect: int | None = 200,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> requests.Response | TestResponse:
    """POST /api/create for `name` pointing at `remote_host`, an OpenAI-compatible
    remote serving "remote-model", answered whole (not streamed). `fields` add
    to or replace the body's (pass "from" as **{"from": ...}); a field set to
    None is left out. `target` is a relay with a `url`, or a Flask test client.
    The answer must have status `expect` (None: any); it is returned."""
    body = {
        "name": name,
        "from": "remote-model",
        "remote_type": "openai",
        "stream": False,
        "remote_host": remote_host,
        **fields,
    }
    body = {key: value for key, value in body.items() if value is not None}
    if hasattr(target, "url"):
        response = requests.post(target.url + "/api/create", json=body, headers=headers, timeout=10)
        text = response.text
    else:
        response = target.post("/api/create", json=body, headers=headers)
        text = response.get_data(as_text=True)
    if expect is not None:
        assert response.status_code == expect, text
    return response
