"""Health, readiness, request ids, Prometheus metrics across workers, and logs
that never carry a key."""

import json
import re

import requests

from tests.support.fake_upstream import Reply
from tests.support.models import create_model
from tests.support.servers import free_port

KEY = "sk-observability-KEY-4f3e2d1c0b"
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def create(relay, upstream, name="m"):
    create_model(relay, name, upstream.url + "/v1", remote_api_key=KEY)


def log_lines(relay):
    lines = []
    for raw in relay.log().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_healthz_needs_no_database_and_readyz_says_why(make_app, tmp_path):
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    app = make_app(RELAY_DATABASE_URL=dead, RELAY_AUTO_MIGRATE=False)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "reason": "database unreachable"}
    assert client.head("/").status_code == 200

    fresh = make_app(
        RELAY_DATABASE_URL=f"sqlite:///{tmp_path}/fresh.sqlite3", RELAY_AUTO_MIGRATE=False
    ).test_client()
    response = fresh.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reason"].startswith("schema not current: pending 0001_initial")


def test_readyz_when_ready(client):
    assert client.get("/readyz").get_json() == {"status": "ok"}


def test_request_ids_are_taken_echoed_and_sent_upstream(relay_with, upstream):
    relay = relay_with()
    create(relay, upstream)
    given = requests.post(
        relay.url + "/v1/chat/completions",
        json={"model": "m", **CHAT},
        headers={"X-Request-ID": "trace-42.a"},
    )
    assert given.headers["X-Request-ID"] == "trace-42.a"
    assert upstream.last.headers["x-request-id"] == "trace-42.a"

    for bad in ("x" * 200, "has spaces", ""):
        made = requests.post(
            relay.url + "/v1/chat/completions",
            json={"model": "m", **CHAT},
            headers={"X-Request-ID": bad},
        )
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
        assert upstream.last.headers["x-request-id"] == made.headers["X-Request-ID"]


def metric(text, name, **labels):
    """The value of one sample in Prometheus text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_add_up_across_workers(relay_with, upstream):
    relay = relay_with(workers=2)
    create(relay, upstream)
    for _ in range(6):
        with requests.Session() as fresh:  # new connections spread over both workers
            fresh.post(relay.url + "/v1/chat/completions", json={"model": "m", **CHAT})
            fresh.post(relay.url + "/api/chat", json={"model": "m", "stream": True, **CHAT})
    ghost = requests.post(relay.url + "/api/chat", json={"model": "ghost", **CHAT})
    assert ghost.status_code == 404, ghost.text
    for _ in range(4):  # whichever worker answers the scrape, it tells the same totals
        text = requests.get(relay.url + "/metrics").text
        assert (
            metric(
                text,
                "relay_requests_total",
                route="/v1/chat/completions",
                model="m:latest",
                status="200",
                surface="openai",
            )
            == 6
        )
        assert metric(text, "relay_requests_total", route="/api/chat", status="200") == 6
        assert metric(text, "relay_requests_total", route="/api/chat", status="404") == 1
        assert metric(text, "relay_tokens_total", model="m:latest", direction="in") == 12 * 11
        assert metric(text, "relay_tokens_total", model="m:latest", direction="out") == 12 * 7
        assert (
            metric(text, "relay_upstream_requests_total", remote_host=upstream.url, outcome="200")
            == 12
        )
        assert (
            metric(text, "relay_upstream_first_byte_seconds_count", remote_host=upstream.url) == 6
        )
        assert metric(text, "relay_request_duration_seconds_count", route="/api/chat") == 7
        assert metric(text, "relay_open_streams") == 0
    # Anthropic's surface is labelled as its own, though its paths start with /v1.
    anthropic = requests.post(
        relay.url + "/v1/messages", json={"model": "m", "max_tokens": 10, **CHAT}
    )
    assert anthropic.status_code == 200, anthropic.text
    assert (
        metric(
            requests.get(relay.url + "/metrics").text,
            "relay_requests_total",
            route="/v1/messages",
            status="200",
            surface="anthropic",
        )
        == 1
    )


def test_logs_are_json_lines_and_never_carry_a_key(relay_with, upstream):
    relay = relay_with(RELAY_TRUSTED_PROXIES="1", RELAY_ALLOW_UNAUTHENTICATED="1")
    create(relay, upstream)
    requests.post(
        relay.url + "/v1/chat/completions",
        json={"model": "m", **CHAT},
        headers={"X-Request-ID": "req-1", "X-Forwarded-For": "203.0.113.9"},
    )
    requests.post(relay.url + "/api/chat", json={"model": "m", **CHAT})
    upstream.reply(Reply(status=401, json={"error": {"message": f"Incorrect API key: {KEY}"}}))
    requests.post(relay.url + "/v1/responses", json={"model": "m", "input": "x"})
    create(relay, type("Gone", (), {"url": f"http://127.0.0.1:{free_port()}"}), name="gone")
    requests.post(relay.url + "/api/chat", json={"model": "gone", **CHAT})
    relay.stop()
    log = relay.log()
    assert KEY not in log and KEY[3:15] not in log
    assert "Bearer" not in log and "uthorization" not in log
    lines = log_lines(relay)
    access = [line for line in lines if line["logger"] == "app.access"]
    first = next(line for line in access if line["request_id"] == "req-1")
    assert first["client"] == "203.0.113.9"  # one trusted proxy in front
    assert (first["method"], first["path"], first["model"], first["status"]) == (
        "POST",
        "/v1/chat/completions",
        "m:latest",
        200,
    )
    assert (first["upstream_status"], first["tokens_in"], first["tokens_out"]) == (200, 11, 7)
    assert first["remote_host"] == upstream.url and first["duration_ms"] >= 0
    failed = [line for line in access if line["path"] == "/v1/responses"]
    assert failed[0]["status"] == 401 and failed[0]["upstream_status"] == 401
    assert any(
        line["level"] == "WARNING" or line["status"] == 502
        for line in access
        if line.get("model") == "gone:latest"
    )


def test_forwarded_headers_are_ignored_without_trusted_proxies(relay_with, upstream):
    relay = relay_with()
    requests.get(
        relay.url + "/api/tags",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Request-ID": "spoof-check"},
    )
    relay.stop()
    line = next(line for line in log_lines(relay) if line.get("request_id") == "spoof-check")
    assert line["client"] == "127.0.0.1"


def test_the_request_line_is_the_line_logging_would_write(monkeypatch):
    """The request line is written without logging's record machinery
    (app.observability.telemetry._log_request), yet is what the JSON handler writes for
    the record; a level or a handler set since is obeyed as logging would."""
    import io
    import logging

    from app.observability import telemetry

    telemetry.configure_logging("INFO")
    stream = io.StringIO()
    monkeypatch.setattr(telemetry._JSON_HANDLER, "stream", stream)
    fields = {
        "request_id": "r-1",
        "path": "/v1/chat/completions",
        "status": 200,
        "model": None,
        "duration_ms": 1.5,
        "client": "caf\u00e9 \u2603",
    }
    telemetry._log_request(fields)
    telemetry.access_log.info("request", extra={"fields": fields})
    direct, through_logging = stream.getvalue().splitlines()
    assert direct == through_logging
    assert json.loads(direct)["client"] == "caf\u00e9 \u2603"

    added = io.StringIO()
    extra = logging.StreamHandler(added)
    telemetry.access_log.addHandler(extra)
    try:
        telemetry._log_request(fields)
    finally:
        telemetry.access_log.removeHandler(extra)
    assert added.getvalue() == "request\n"  # the record reached it, and went on:
    assert stream.getvalue().splitlines()[-1] == direct

    telemetry.configure_logging("WARNING")
    monkeypatch.setattr(telemetry._JSON_HANDLER, "stream", stream)
    before = stream.getvalue()
    telemetry._log_request(fields)
    assert stream.getvalue() == before
    telemetry.configure_logging("INFO")
