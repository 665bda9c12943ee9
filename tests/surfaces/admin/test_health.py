"""/api/version and /api/status as Ollama answers them, over HTTP."""

import requests


def test_version_is_the_ollama_release_whose_surface_the_relay_serves(gateway):
    # 0.30.0 added capabilities to /api/tags, the newest thing the relay
    # serves; clients gate features (think "max", logprobs, /api/status) on it.
    answer = requests.get(gateway.url + "/api/version")
    assert answer.status_code == 200
    assert answer.json() == {"version": "0.30.0"}


def test_status_is_a_server_without_cloud(gateway):
    answer = requests.get(gateway.url + "/api/status")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    # Ollama's StatusResponse, as a server run with OLLAMA_NO_CLOUD=1 answers it.
    assert answer.json() == {"cloud": {"disabled": True, "source": "env"}}


def test_ps_stays_empty_and_tags_keep_capabilities(gateway, remote_model, upstream):
    remote_model("caps", capabilities=["completion", "tools", "thinking"])
    assert requests.get(gateway.url + "/api/ps").json() == {"models": []}
    (listed,) = [
        m
        for m in requests.get(gateway.url + "/api/tags").json()["models"]
        if m["name"] == "caps:latest"
    ]
    assert listed["capabilities"] == ["completion", "tools", "thinking"]
