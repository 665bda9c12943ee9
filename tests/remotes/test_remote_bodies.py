"""What a remote's body can make of the client's answer (issue 18, holes 5 and 6).

- The key the relay sent is removed from a remote's error text before the
  text is cut to 500 characters: a key straddling the cut used to show in
  part. A JSON error's `message` is cut too (a 5 MB one was passed whole).
- A whole answer nested past the JSON parser's limit is a 502 in the
  surface's shape naming the remote, with a warning in the log, not a 500
  and a traceback.

Through gunicorn, over loopback, to the fake upstream.
"""

import json

import pytest
import requests

from tests.support.fake_upstream import Reply, chunk

# The providers' key of these tests' models: longer than the gateway's own,
# so that a piece of it is unmistakable.
KEY = "sk-straddle-0123456789abcdefghijklmnopqrstuvwxyz"
CUT = 500
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
BODIES = {
    "/v1/chat/completions": CHAT,
    "/v1/responses": {"input": "hi"},
    "/v1/messages": {"max_tokens": 10, **CHAT},
    "/api/chat": {"stream": False, **CHAT},
    "/v1/embeddings": {"input": "hi"},
    "/api/embed": {"input": "hi"},
}
CHATS = ["/v1/chat/completions", "/v1/responses", "/v1/messages", "/api/chat"]


def pieces(secret, size=8):
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def assert_no_piece_of_the_key(text):
    shown = [piece for piece in pieces(KEY) if piece in text]
    assert not shown, f"pieces of the key in the answer: {shown}"


def straddling(prefix=CUT - 10):
    """Error text whose key begins `prefix` characters in, across the cut."""
    return "x" * prefix + KEY + " was refused"


def message_of(path, response):
    """The error message in the surface's shape."""
    body = response.json()
    return body["error"] if path.startswith("/api/") else body["error"]["message"]


def post(gateway, path, model, stream=False, **extra):
    body = dict(BODIES[path], model=model, **extra)
    if stream:
        body["stream"] = True
    return requests.post(gateway.url + path, json=body, timeout=60)


def openai_model(remote_model):
    return remote_model("keyed", remote_api_key=KEY)


def ollama_model(remote_model):
    return remote_model("keyed-ollama", remote_type="ollama", path="", remote_api_key=KEY)


ERRORS = {
    "text": lambda text: Reply(status=400, text=text),
    "json message": lambda text: Reply(status=400, json={"error": {"message": text}}),
    "json string": lambda text: Reply(status=400, json={"error": text}),
}


@pytest.mark.parametrize("kind", ERRORS)
@pytest.mark.parametrize("path", BODIES)
def test_a_key_across_the_cut_never_shows_in_part(gateway, remote_model, upstream, path, kind):
    model = openai_model(remote_model)
    upstream.reply(ERRORS[kind](straddling()))
    response = post(gateway, path, model)
    assert response.status_code == 400, response.text
    message = message_of(path, response)
    assert message.startswith("API error (400): " + "x" * (CUT - 10) + "***")
    assert_no_piece_of_the_key(response.text)


@pytest.mark.parametrize("path", CHATS)
def test_a_key_across_the_cut_of_a_streams_error_never_shows_in_part(
    gateway, remote_model, upstream, path
):
    model = openai_model(remote_model)
    # Refused before the stream, and, in a second request, an error event in it.
    upstream.reply(
        Reply(status=400, text=straddling()),
        Reply(
            sse=[
                chunk({"role": "assistant", "content": "Hi"}),
                f"event: error\ndata: {straddling()}\n\n",
            ]
        ),
    )
    refused = post(gateway, path, model, stream=True)
    assert refused.status_code == 400
    assert_no_piece_of_the_key(refused.text)
    broken = post(gateway, path, model, stream=True)
    assert broken.status_code == 200
    assert "x" * (CUT - 30) in broken.text  # the remote's error did reach the client
    assert_no_piece_of_the_key(broken.text)


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate"])
def test_a_key_across_the_cut_from_an_ollama_remote_never_shows_in_part(
    gateway, remote_model, upstream, path
):
    model = ollama_model(remote_model)
    body = {"prompt": "hi"} if path == "/api/generate" else CHAT
    upstream.reply(
        Reply(status=400, text=straddling()),
        Reply(ndjson=[{"error": straddling()}]),
        Reply(ndjson=[{"error": {"message": straddling()}}]),
    )
    refused = requests.post(
        gateway.url + path, json={"model": model, "stream": False, **body}, timeout=60
    )
    assert refused.status_code == 400
    assert_no_piece_of_the_key(refused.text)
    for _ in range(2):
        # An error line in the stream, before (and so instead of) the answer.
        failed = requests.post(gateway.url + path, json={"model": model, **body}, timeout=60)
        assert "x" * (CUT - 30) in failed.text
        assert_no_piece_of_the_key(failed.text)


@pytest.mark.parametrize("path", BODIES)
def test_a_huge_json_error_message_is_cut(gateway, remote_model, upstream, path):
    model = openai_model(remote_model)
    upstream.reply(Reply(status=400, json={"error": {"message": "m" * 5_000_000}}))
    response = post(gateway, path, model)
    assert response.status_code == 400
    assert message_of(path, response) == "API error (400): " + "m" * CUT
    assert len(response.content) < 2 * CUT + 500


NESTED = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


def warnings_in(log):
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line["message"] for line in lines if line.get("level") == "WARNING"]


@pytest.mark.parametrize("path", [*BODIES, "/api/generate"])
def test_a_whole_answer_nested_past_the_parsers_limit_is_the_remotes_error(
    gateway, remote_model, upstream, path
):
    if path == "/api/generate":
        model, request = ollama_model(remote_model), {"prompt": "hi", "stream": False}
    else:
        model, request = openai_model(remote_model), BODIES[path]
    upstream.reply(Reply(body=NESTED))
    start = len(gateway.log())
    response = requests.post(gateway.url + path, json=dict(request, model=model), timeout=60)
    assert response.status_code == 502, response.text
    expected = f"{upstream.url} answered with JSON nested too deeply"
    if path.startswith("/api/"):
        assert response.json() == {"error": expected}
    elif path == "/v1/messages":
        assert response.json()["type"] == "error"
        assert response.json()["error"]["message"] == expected
    else:
        assert response.json()["error"]["message"] == expected
    log = gateway.log()[start:]
    assert "Traceback" not in log
    assert expected in warnings_in(log)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_an_error_body_nested_past_the_parsers_limit_is_the_remotes_error(
    gateway, remote_model, upstream, path
):
    model = openai_model(remote_model)
    upstream.reply(Reply(status=400, body=NESTED))
    start = len(gateway.log())
    response = post(gateway, path, model)
    assert response.status_code == 400
    assert message_of(path, response) == "API error (400): " + NESTED[:CUT].decode()
    assert "Traceback" not in gateway.log()[start:]
