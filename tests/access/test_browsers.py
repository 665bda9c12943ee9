"""Browsers and the network: Origin (refused before anything runs), CORS for
allowed origins, the Host of an open relay (DNS rebinding), and the `-` key.

Two relays under gunicorn serve the module: an open one (no admin token) and
a secured one; both add origins with RELAY_ORIGINS wildcards.
"""

import json

import pytest
import requests

from tests.support.access import (
    ADMIN,
    ADMIN_TOKEN,
    CHAT,
    REMOTE_KEY,
    accepted_everywhere,
    bearer,
    create_key,
    metric,
    model_for,
    start_relay,
    tag_names,
    unique,
    until,
)

ORIGINS = "chrome-extension://*, https://*.example.com"
DEFAULT_ALLOWED = (
    "http://localhost",
    "http://localhost:5173",
    "https://localhost:8443",
    "http://127.0.0.1:3000",
    "https://127.0.0.1",
    "http://[::1]:8080",
)
EXTRA_ALLOWED = (
    "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
    "https://app.example.com",
    "https://a.b.example.com",
)
REFUSED = (
    "https://evil.example",
    "null",
    "http://localhost.evil.example",
    "http://127.0.0.1.nip.io",
    "http://example.com",
    "moz-extension://abcdef",
    "https://example.com",
    "http://app.example.com",
    "https://app.example.com.evil.net",
    "https://evilexample.com",
)


@pytest.fixture(scope="module")
def open_relay(tmp_path_factory, upstream_server):
    relay = start_relay(
        tmp_path_factory.mktemp("open"),
        RELAY_ORIGINS=ORIGINS,
        RELAY_ALLOWED_HOSTS="relay.internal, *.corp.example",
    )
    model_for(relay, upstream_server.url, "alpha", headers={})
    yield relay
    relay.stop()
    assert REMOTE_KEY not in relay.log()


@pytest.fixture(scope="module")
def secured(tmp_path_factory, upstream_server):
    relay = start_relay(
        tmp_path_factory.mktemp("secured-browsers"),
        RELAY_ORIGINS=ORIGINS,
        RELAY_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    model_for(relay, upstream_server.url, "alpha")
    yield relay
    relay.stop()
    assert ADMIN_TOKEN not in relay.log() and REMOTE_KEY not in relay.log()


def cors_of(response):
    return {
        name: value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


# --- Origin ---------------------------------------------------------------------------


def test_a_drive_by_text_plain_post_creates_nothing(open_relay, upstream):
    name = unique("planted")
    # What any web page can send without a preflight: a "simple" POST.
    body = json.dumps(
        {
            "name": name,
            "from": "x",
            "remote_type": "openai",
            "stream": False,
            "remote_host": upstream.url + "/v1",
        }
    )
    for origin in ("https://evil.example", "null", "http://localhost.evil.example"):
        response = requests.post(
            open_relay.url + "/api/create",
            data=body,
            headers={"Content-Type": "text/plain", "Origin": origin},
        )
        assert response.status_code == 403, origin
        assert "RELAY_ORIGINS" in response.json()["error"]
        assert cors_of(response) == {}
        deleted = requests.delete(
            open_relay.url + "/api/delete", json={"model": "alpha"}, headers={"Origin": origin}
        )
        assert deleted.status_code == 403
    assert name + ":latest" not in tag_names(open_relay, {})
    assert "alpha:latest" in tag_names(open_relay, {})

    # The same body from a page of an allowed origin (or from curl) does create.
    allowed = requests.post(
        open_relay.url + "/api/create",
        data=body,
        headers={"Content-Type": "text/plain", "Origin": "http://localhost:3000"},
    )
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert name + ":latest" in tag_names(open_relay, {})


@pytest.mark.parametrize("origin", REFUSED)
def test_an_unknown_origin_is_refused_before_anything_runs(open_relay, secured, upstream, origin):
    for relay, headers in ((open_relay, {}), (secured, ADMIN)):
        response = requests.post(
            relay.url + "/v1/chat/completions",
            headers={"Origin": origin, **headers},
            json={"model": "alpha", **CHAT},
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "origin_not_allowed"
        assert cors_of(response) == {}
        preflight = requests.options(
            relay.url + "/v1/chat/completions",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 403 and cors_of(preflight) == {}
    assert upstream.requests == []


@pytest.mark.parametrize("origin", DEFAULT_ALLOWED + EXTRA_ALLOWED)
def test_an_allowed_origin_is_answered_with_cors_headers(open_relay, secured, origin):
    for relay, headers in ((open_relay, {}), (secured, ADMIN)):
        response = requests.get(relay.url + "/api/tags", headers={"Origin": origin, **headers})
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "Origin" in response.headers["Vary"]
        assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]


def test_a_preflight_needs_no_key_and_the_answer_is_readable(secured, upstream):
    origin = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
    asked = "authorization, content-type, x-stainless-os, x-stainless-retry-count"
    preflight = requests.options(
        secured.url + "/v1/chat/completions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = {
        h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {h.strip() for h in asked.split(",")} <= allowed
    assert upstream.requests == []

    # The request itself: a refusal is readable by the page, and so is the answer.
    refused = requests.post(
        secured.url + "/v1/chat/completions",
        headers={"Origin": origin},
        json={"model": "alpha", **CHAT},
    )
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == origin
    assert refused.json()["error"]["code"] == "invalid_api_key"
    name, key = create_key(secured)
    until(lambda: accepted_everywhere(secured, key), "the new key works")
    streamed = requests.post(
        secured.url + "/v1/chat/completions",
        stream=True,
        headers={"Origin": origin, **bearer(key)},
        json={"model": "alpha", "stream": True, **CHAT},
    )
    assert streamed.status_code == 200
    assert streamed.headers["Access-Control-Allow-Origin"] == origin
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    assert b"data: [DONE]" in streamed.content
    requests.delete(secured.url + "/api/keys", headers=ADMIN, json={"name": name})


def test_requests_without_an_origin_get_no_cors_headers(open_relay, secured):
    assert cors_of(requests.get(open_relay.url + "/api/tags")) == {}
    assert cors_of(requests.get(secured.url + "/api/tags", headers=ADMIN)) == {}
    # Neither does a plain OPTIONS (not a preflight) of a disallowed page grant anything.
    plain = requests.options(open_relay.url + "/api/tags")
    assert "Access-Control-Allow-Origin" not in plain.headers


# --- Host (DNS rebinding) -------------------------------------------------------------


def test_an_open_relay_answers_loopback_and_listed_hosts_only(open_relay):
    port = open_relay.port
    allowed = (
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        "localhost",
        f"app.localhost:{port}",
        "127.0.0.2",
        f"[::1]:{port}",
        "relay.internal",
        "relay.internal:8080",
        "gpu.corp.example",
    )
    refused = (
        "evil.example",
        f"evil.example:{port}",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "relay.internal.evil.example",
        "corp.example",
        "0.0.0.0",
        f"192.168.1.10:{port}",
    )
    for host in allowed:
        for path in ("/api/tags", "/api/version", "/v1/models"):
            response = requests.get(open_relay.url + path, headers={"Host": host})
            assert response.status_code == 200, (host, path, response.text)
    for host in refused:
        for path in ("/api/tags", "/api/version"):
            response = requests.get(open_relay.url + path, headers={"Host": host})
            assert response.status_code == 403, (host, path)
            assert "RELAY_ALLOWED_HOSTS" in response.json()["error"]
        created = requests.post(
            open_relay.url + "/api/create",
            headers={"Host": host},
            json={
                "name": "rebound",
                "from": "x",
                "remote_host": "http://127.0.0.1:1/v1",
                "remote_type": "openai",
                "stream": False,
            },
        )
        assert created.status_code == 403, host
        v1 = requests.get(open_relay.url + "/v1/models", headers={"Host": host})
        assert v1.status_code == 403 and v1.json()["error"]["code"] == "host_not_allowed"
    assert "rebound:latest" not in tag_names(open_relay, {})


def test_with_an_admin_token_the_host_is_not_checked(secured):
    for host in ("relay.example.net", "evil.example", "10.1.2.3:11434"):
        assert (
            requests.get(secured.url + "/api/tags", headers={"Host": host, **ADMIN}).status_code
            == 200
        )
        assert requests.get(secured.url + "/api/tags", headers={"Host": host}).status_code == 401
        assert requests.get(secured.url + "/api/version", headers={"Host": host}).status_code == 200


# --- open mode ----------------------------------------------------------------------


def test_an_open_relay_needs_no_key_and_counts_under_dash(open_relay, upstream):
    model = model_for(open_relay, upstream.url, unique("open-model"), headers={})
    for headers in ({}, bearer("orl-anything-at-all-0123456789"), {"x-api-key": "whatever"}):
        response = requests.post(
            open_relay.url + "/v1/chat/completions", headers=headers, json={"model": model, **CHAT}
        )
        assert response.status_code == 200
    text = requests.get(open_relay.url + "/metrics").text
    full = model + ":latest"
    assert (
        metric(
            text,
            "relay_requests_total",
            key="-",
            model=full,
            route="/v1/chat/completions",
            status="200",
        )
        == 3
    )
    assert metric(text, "relay_tokens_total", key="-", model=full, direction="in") == 33
    assert metric(text, "relay_requests_total", model=full) == 3
