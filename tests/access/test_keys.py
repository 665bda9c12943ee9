"""A shared relay: the admin token, client keys (HTTP and CLI), per-key models,
expiry and revocation, stored responses per key, metrics and audit.

One relay under gunicorn (two gevent workers, admin token set) serves the
module; every test makes its own keys, so none depends on another.
"""

import datetime
import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor

import ollama
import openai
import pytest
import requests

from tests.support.access import (
    ADMIN,
    ADMIN_TOKEN,
    CHAT,
    KEY_FIELDS,
    REMOTE_KEY,
    accepted_everywhere,
    audit_lines,
    bearer,
    cli_runner,
    create_key,
    metric,
    model_for,
    ollama_client,
    refused_everywhere,
    sdk,
    start_relay,
    status_with,
    tag_names,
    unique,
    until,
)

SECOND_ADMIN_TOKEN = "second-admin-TOKEN-0f9e8d7c6b5a"
# Every client key the module's relay handed out: none may reach its log.
HANDED_OUT = []


@pytest.fixture(scope="module")
def secured(tmp_path_factory, upstream_server):
    workdir = tmp_path_factory.mktemp("secured")
    relay = start_relay(workdir, RELAY_ADMIN_TOKEN=f"{ADMIN_TOKEN}, {SECOND_ADMIN_TOKEN}")
    model_for(relay, upstream_server.url, "alpha")
    model_for(relay, upstream_server.url, "beta")
    yield relay
    relay.stop()
    log = relay.log()
    for secret in (ADMIN_TOKEN, SECOND_ADMIN_TOKEN, REMOTE_KEY, *HANDED_OUT):
        assert secret not in log, "a secret reached the relay's log"


def new_key(relay, **fields):
    """A key, once every worker knows it (see test_a_new_key_works_at_once_everywhere)."""
    name, secret = create_key(relay, **fields)
    HANDED_OUT.append(secret)
    until(lambda: accepted_everywhere(relay, secret), "every worker accepts the new key")
    return name, secret


def openai_error(response):
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# --- who may call ------------------------------------------------------------


def test_probes_and_the_version_need_no_key(secured):
    for path in ("/", "/api/version", "/api/status", "/healthz", "/readyz", "/metrics"):
        assert requests.get(secured.url + path).status_code == 200, path
        assert requests.head(secured.url + path).status_code == 200, path
    assert requests.post(secured.url + "/api/show", json={"model": "alpha"}).status_code == 401
    assert requests.get(secured.url + "/api/tags").status_code == 401


def test_without_a_key_both_clients_get_401(secured, upstream):
    # The placeholder key Ollama's docs tell OpenAI clients to send.
    client = sdk(secured, "ollama")
    for stream in (False, True):
        with pytest.raises(openai.AuthenticationError) as excinfo:
            client.chat.completions.create(model="alpha", stream=stream, **CHAT)
        assert excinfo.value.status_code == 401
        assert excinfo.value.body["code"] == "invalid_api_key"
        assert excinfo.value.body["type"] == "invalid_request_error"
        assert excinfo.value.response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "ollama" not in excinfo.value.body["message"]

    plain = ollama_client(secured)
    with pytest.raises(ollama.ResponseError) as excinfo:
        plain.chat(model="alpha", messages=CHAT["messages"])
    assert excinfo.value.status_code == 401 and "API key" in excinfo.value.error
    with pytest.raises(ollama.ResponseError) as excinfo:
        list(plain.chat(model="alpha", messages=CHAT["messages"], stream=True))
    assert excinfo.value.status_code == 401

    v1 = requests.post(secured.url + "/v1/chat/completions", json={"model": "alpha", **CHAT})
    assert v1.status_code == 401 and v1.headers["WWW-Authenticate"].startswith("Bearer ")
    assert openai_error(v1)["code"] == "invalid_api_key"
    api = requests.post(secured.url + "/api/chat", json={"model": "alpha", **CHAT})
    assert api.status_code == 401 and api.headers["WWW-Authenticate"].startswith("Bearer ")
    assert set(api.json()) == {"error"} and isinstance(api.json()["error"], str)
    assert upstream.requests == []


def test_a_client_key_chats_through_both_clients(secured, upstream):
    _, key = new_key(secured)
    client = sdk(secured, key)
    answer = client.chat.completions.create(model="alpha", **CHAT)
    assert answer.choices[0].message.content == "Hello from upstream"
    pieces = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="alpha", stream=True, **CHAT)
        if c.choices
    ]
    assert "".join(pieces) == "Hello from upstream"

    native = ollama_client(secured, key)
    assert (
        native.chat(model="alpha", messages=CHAT["messages"]).message.content
        == "Hello from upstream"
    )
    parts = native.chat(model="alpha", messages=CHAT["messages"], stream=True)
    assert "".join(p.message.content for p in parts) == "Hello from upstream"
    # The remote gets the provider's key the relay keeps, never the client's.
    assert {r.headers["authorization"] for r in upstream.requests} == {f"Bearer {REMOTE_KEY}"}


@pytest.mark.parametrize("header", ["Authorization", "x-api-key", "api-key"])
def test_the_key_may_come_in_each_header(secured, header):
    _, key = new_key(secured, models=["alpha"])
    value = f"Bearer {key}" if header == "Authorization" else key
    for path in ("/api/tags", "/v1/models"):
        response = requests.get(secured.url + path, headers={header: value})
        assert response.status_code == 200, (path, response.text)
    assert tag_names(secured, {header: value}) == ["alpha:latest"]

    wrong = "orl-" + "x" * 43
    value = f"Bearer {wrong}" if header == "Authorization" else wrong
    for path in ("/api/tags", "/v1/models"):
        response = requests.get(secured.url + path, headers={header: value})
        assert response.status_code == 401
        assert wrong not in response.text and "xxxxxxxx" not in response.text


def test_unknown_keys_are_refused_without_being_quoted(secured):
    near_admin = ADMIN_TOKEN[:-1] + "X"
    for presented in ("orl-not-a-key-we-made-0123456789", near_admin, ADMIN_TOKEN[:16]):
        for path in ("/v1/models", "/api/tags"):
            response = requests.get(secured.url + path, headers=bearer(presented))
            assert response.status_code == 401
            assert presented not in response.text
        assert (
            openai_error(
                requests.get(secured.url + "/v1/models", headers={"x-api-key": presented})
            )["code"]
            == "invalid_api_key"
        )


def test_either_admin_token_may_do_everything(secured, upstream):
    for token in (ADMIN_TOKEN, SECOND_ADMIN_TOKEN):
        headers = bearer(token)
        name = unique("admin-made")
        model_for(secured, upstream.url, name, headers=headers)
        copied = requests.post(
            secured.url + "/api/copy",
            headers=headers,
            json={"source": name, "destination": name + "-copy"},
        )
        assert copied.status_code == 200
        assert {name + ":latest", name + "-copy:latest"} <= set(tag_names(secured, headers))
        answer = sdk(secured, token).chat.completions.create(model=name + "-copy", **CHAT)
        assert answer.choices[0].message.content == "Hello from upstream"
        for model in (name, name + "-copy"):
            assert (
                requests.delete(
                    secured.url + "/api/delete", headers=headers, json={"model": model}
                ).status_code
                == 200
            )
        assert requests.get(secured.url + "/api/keys", headers=headers).status_code == 200
        assert requests.get(secured.url + "/api/usage", headers=headers).status_code == 200
        assert name + ":latest" not in tag_names(secured, headers)


def test_management_is_for_the_admin_only(secured, upstream):
    key_name, key = new_key(secured)
    headers = bearer(key)
    name = unique("not-yours")
    attempts = [
        (
            "POST",
            "/api/create",
            {
                "name": name,
                "from": "x",
                "remote_type": "openai",
                "remote_host": upstream.url + "/v1",
                "stream": False,
            },
        ),
        ("DELETE", "/api/delete", {"model": "alpha"}),
        ("POST", "/api/copy", {"source": "alpha", "destination": name}),
        ("GET", "/api/keys", None),
        ("POST", "/api/keys", {"name": name}),
        ("DELETE", "/api/keys", {"name": key_name}),
        ("PATCH", "/api/keys", {"name": key_name, "rpm": 5}),
        ("GET", "/api/teams", None),
        ("POST", "/api/teams", {"name": name}),
    ]
    for method, path, body in attempts:
        response = requests.request(method, secured.url + path, json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert set(response.json()) == {"error"} and "admin" in response.json()["error"]

    native = ollama_client(secured, key)
    for attempt in (lambda: native.delete("alpha"), lambda: native.copy("alpha", name)):
        with pytest.raises(ollama.ResponseError) as excinfo:
            attempt()
        assert excinfo.value.status_code == 403

    # Nothing happened: the models are as they were, the key still works.
    assert {"alpha:latest", "beta:latest"} <= set(tag_names(secured))
    assert not any(n.startswith(name) for n in tag_names(secured))
    assert status_with(secured, key) == 200
    listed = requests.get(secured.url + "/api/keys", headers=ADMIN).json()["keys"]
    assert name not in [k["name"] for k in listed]
    assert not [
        line
        for line in audit_lines(secured)
        if line["actor"] == key_name or line["object"].startswith(name)
    ]


# --- keys over HTTP ------------------------------------------------------------


def test_create_list_revoke_and_reuse_a_name(secured):
    name = unique("team")
    created = requests.post(
        secured.url + "/api/keys",
        headers=ADMIN,
        json={
            "name": name,
            "models": ["alpha", "beta:latest"],
            "rpm": 60,
            "tpm": 1000,
            "expires": "2099-01-01T02:00:00+02:00",
        },
    )
    assert created.status_code == 200, created.text
    body = created.json()
    key = body.pop("key")
    HANDED_OUT.append(key)
    assert re.fullmatch(r"orl-[A-Za-z0-9_-]{40,}", key)
    assert set(body) == KEY_FIELDS
    assert (
        body["name"],
        body["models"],
        body["rpm"],
        body["tpm"],
        body["expires"],
        body["last_used_at"],
        body["revoked"],
    ) == (name, ["alpha:latest", "beta:latest"], 60, 1000, "2099-01-01T00:00:00Z", None, False)

    listing = requests.get(secured.url + "/api/keys", headers=ADMIN)
    for secret in (key, key[4:20], hashlib.sha256(key.encode()).hexdigest()):
        assert secret not in listing.text
    (listed,) = [k for k in listing.json()["keys"] if k["name"] == name]
    assert set(listed) == KEY_FIELDS and listed["created_at"] == body["created_at"]

    again = requests.post(secured.url + "/api/keys", headers=ADMIN, json={"name": name})
    assert again.status_code == 409 and name in again.json()["error"]

    revoked = requests.delete(secured.url + "/api/keys", headers=ADMIN, json={"name": name})
    assert (revoked.status_code, revoked.json()) == (200, {"name": name, "revoked": True})
    twice = requests.delete(secured.url + "/api/keys", headers=ADMIN, json={"name": name})
    assert twice.status_code == 409
    unknown = requests.delete(
        secured.url + "/api/keys", headers=ADMIN, json={"name": unique("nobody")}
    )
    assert unknown.status_code == 404
    (listed,) = [
        k
        for k in requests.get(secured.url + "/api/keys", headers=ADMIN).json()["keys"]
        if k["name"] == name
    ]
    assert listed["revoked"] is True

    # The name is free again; the old key stays dead.
    _, fresh = create_key(secured, name)
    HANDED_OUT.append(fresh)
    assert fresh != key
    until(lambda: accepted_everywhere(secured, fresh), "the new key works")
    until(lambda: refused_everywhere(secured, key), "the revoked key is refused everywhere")


def test_a_new_key_works_at_once_everywhere(secured):
    # The admin hands the key over as soon as POST /api/keys answers: its
    # first use may reach either worker.
    for _ in range(3):
        name, key = create_key(secured)
        HANDED_OUT.append(key)
        statuses = [status_with(secured, key) for _ in range(10)]
        assert statuses == [200] * 10, f"key {name!r} refused right after it was created"


def test_keys_made_in_parallel_are_all_made(secured):
    # A provisioning script creating a team's keys with a few threads.
    def make(_):
        response = requests.post(
            secured.url + "/api/keys", headers=ADMIN, json={"name": unique("batch")}
        )
        if response.status_code == 200:
            HANDED_OUT.append(response.json()["key"])
        return response.status_code, response.text

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(make, range(24)))
    assert [a for a in answers if a[0] != 200] == []


def test_the_listing_says_when_a_key_was_last_used(secured):
    name, key = new_key(secured)
    sdk(secured, key).chat.completions.create(model="alpha", **CHAT)

    def last_used():
        keys = requests.get(secured.url + "/api/keys", headers=ADMIN).json()["keys"]
        return next(k["last_used_at"] for k in keys if k["name"] == name)

    until(lambda: last_used() is not None, "last_used_at is filled in")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", last_used())


def test_revocation_reaches_every_worker(secured):
    name, key = new_key(secured)
    assert status_with(secured, key) == 200
    assert (
        requests.delete(secured.url + "/api/keys", headers=ADMIN, json={"name": name}).status_code
        == 200
    )
    until(lambda: refused_everywhere(secured, key), "revoked key refused by every worker")
    for path in ("/v1/models", "/api/tags"):
        response = requests.get(secured.url + path, headers=bearer(key))
        assert response.status_code == 401 and "revoked" in response.text
        assert key not in response.text


def test_a_key_expires_at_its_date_time(secured):
    moment = datetime.datetime.now(datetime.timezone.utc).replace(
        microsecond=0
    ) + datetime.timedelta(seconds=4)
    name, key = new_key(secured, expires=moment.isoformat().replace("+00:00", "Z"))
    first = status_with(secured, key)
    if datetime.datetime.now(datetime.timezone.utc) < moment:
        assert first == 200  # answered before the key expired
    until(lambda: refused_everywhere(secured, key), "the expired key is refused")
    response = requests.post(
        secured.url + "/v1/chat/completions", headers=bearer(key), json={"model": "alpha", **CHAT}
    )
    assert openai_error(response)["code"] == "invalid_api_key"
    assert "expired" in response.json()["error"]["message"] and key not in response.text
    (listed,) = [
        k
        for k in requests.get(secured.url + "/api/keys", headers=ADMIN).json()["keys"]
        if k["name"] == name
    ]
    assert listed["expires"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_keys_made_and_revoked_by_the_cli_reach_the_running_relay(secured):
    name = unique("cli-bot")
    run = cli_runner(secured.settings)
    created = run("keys", "create", name, "--model", "beta")
    key = created.stdout.strip()
    HANDED_OUT.append(key)
    assert re.fullmatch(r"orl-[A-Za-z0-9_-]{40,}\n", created.stdout)
    until(lambda: accepted_everywhere(secured, key), "the relay accepts the CLI's key")
    assert tag_names(secured, bearer(key)) == ["beta:latest"]

    listed = run("keys", "list").stdout
    assert name in listed and key not in listed and "orl-" not in listed
    assert run("keys", "revoke", name).stdout == f"revoked {name}\n"
    until(lambda: refused_everywhere(secured, key), "the relay refuses the revoked key")
    (row,) = [
        k
        for k in requests.get(secured.url + "/api/keys", headers=ADMIN).json()["keys"]
        if k["name"] == name
    ]
    assert row["revoked"] is True and row["models"] == ["beta:latest"]


# --- a key limited to models -----------------------------------------------------


def test_a_key_limited_to_one_model(secured, upstream):
    _, key = new_key(secured, models=["alpha"])
    client, native = sdk(secured, key), ollama_client(secured, key)
    assert [m.model for m in native.list().models] == ["alpha:latest"]
    assert [m.id for m in client.models.list()] == ["alpha:latest"]
    assert client.models.retrieve("alpha").id == "alpha:latest"
    assert client.chat.completions.create(model="alpha", **CHAT).choices[0].message.content
    assert native.chat(model="alpha:latest", messages=CHAT["messages"]).message.content
    assert client.embeddings.create(model="alpha", input="a").data[0].embedding
    assert native.show("alpha").details is not None
    upstream.reset()

    # beta exists, ghost does not: both are simply not this key's.
    for model in ("beta", "beta:latest", "ghost"):
        calls = {
            "chat": lambda: client.chat.completions.create(model=model, **CHAT),
            "stream": lambda: client.chat.completions.create(model=model, stream=True, **CHAT),
            "embeddings": lambda: client.embeddings.create(model=model, input="a"),
            "responses": lambda: client.responses.create(model=model, input="hi"),
            "retrieve": lambda: client.models.retrieve(model),
        }
        for what, call in calls.items():
            with pytest.raises(openai.PermissionDeniedError) as excinfo:
                call()
            assert excinfo.value.status_code == 403, what
            assert excinfo.value.body["code"] == "model_not_allowed", what
            assert model.split(":")[0] in excinfo.value.body["message"], what
        for what, call in {
            "chat": lambda: native.chat(model=model, messages=CHAT["messages"]),
            "show": lambda: native.show(model),
            "embed": lambda: native.embed(model=model, input="a"),
        }.items():
            with pytest.raises(ollama.ResponseError) as excinfo:
                call()
            assert excinfo.value.status_code == 403, what
            assert model.split(":")[0] in excinfo.value.error, what
    assert upstream.requests == []
    assert {"alpha:latest", "beta:latest"} <= set(tag_names(secured))


# --- stored responses per key ------------------------------------------------------


def test_stored_responses_belong_to_the_key_that_made_them(secured, upstream):
    _, alice_key = new_key(secured)
    _, bob_key = new_key(secured)
    alice, bob, admin = sdk(secured, alice_key), sdk(secured, bob_key), sdk(secured, ADMIN_TOKEN)
    first = alice.responses.create(model="alpha", input="remember: teal")
    assert alice.responses.retrieve(first.id).id == first.id
    assert [i.content[0].text for i in alice.responses.input_items.list(first.id).data] == [
        "remember: teal"
    ]

    unknown = requests.get(
        secured.url + "/v1/responses/resp_0123456789abcdef", headers=bearer(bob_key)
    )
    for call in (
        lambda: bob.responses.retrieve(first.id),
        lambda: bob.responses.input_items.list(first.id),
        lambda: bob.responses.delete(first.id),
    ):
        with pytest.raises(openai.NotFoundError) as excinfo:
            call()
        # As if it did not exist: the same answer as for an id nobody made.
        assert excinfo.value.body["message"] == unknown.json()["error"]["message"].replace(
            "resp_0123456789abcdef", first.id
        )
    with pytest.raises(openai.NotFoundError) as excinfo:
        bob.responses.create(model="alpha", input="what colour?", previous_response_id=first.id)
    assert excinfo.value.body["param"] == "previous_response_id"

    follow_up = alice.responses.create(
        model="alpha", input="what colour?", previous_response_id=first.id
    )
    assert "remember: teal" in json.dumps(upstream.last.body["messages"])

    # The admin sees and deletes everything; the admin's own are not the keys'.
    assert admin.responses.retrieve(first.id).id == first.id
    assert admin.responses.input_items.list(follow_up.id).data
    own = admin.responses.create(model="alpha", input="admin's")
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(own.id)
    assert admin.responses.delete(first.id) is None
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(first.id)
    alice.responses.delete(follow_up.id)
    with pytest.raises(openai.NotFoundError):
        admin.responses.retrieve(follow_up.id)


def test_a_new_key_under_a_revoked_keys_name_does_not_see_its_responses(secured):
    name, old_key = new_key(secured)
    stored = sdk(secured, old_key).responses.create(model="alpha", input="private notes")
    assert (
        requests.delete(secured.url + "/api/keys", headers=ADMIN, json={"name": name}).status_code
        == 200
    )
    _, new_key_secret = create_key(secured, name)
    HANDED_OUT.append(new_key_secret)
    until(lambda: accepted_everywhere(secured, new_key_secret), "the new key works")
    # Another key (another person, perhaps): the old key's responses are not its own.
    with pytest.raises(openai.NotFoundError):
        sdk(secured, new_key_secret).responses.retrieve(stored.id)


# --- metrics and audit ---------------------------------------------------------------


def test_metrics_count_requests_and_tokens_per_key(secured, upstream):
    name, key = new_key(secured)
    sdk(secured, key).chat.completions.create(model="alpha", **CHAT)
    sdk(secured, ADMIN_TOKEN).chat.completions.create(model="alpha", **CHAT)
    text = requests.get(secured.url + "/metrics").text
    assert (
        metric(
            text,
            "relay_requests_total",
            key=name,
            route="/v1/chat/completions",
            model="alpha:latest",
            status="200",
        )
        == 1
    )
    assert metric(text, "relay_tokens_total", key=name, direction="in") == 11
    assert metric(text, "relay_tokens_total", key=name, direction="out") == 7
    assert metric(text, "relay_requests_total", key="admin", route="/v1/chat/completions") >= 1
    assert key not in text and ADMIN_TOKEN not in text


def test_management_is_audited_and_no_secret_is_logged(secured, upstream):
    model = unique("audited")
    model_for(secured, upstream.url, model)
    model_for(secured, upstream.url, model)  # a replacement
    requests.post(
        secured.url + "/api/copy",
        headers=bearer(SECOND_ADMIN_TOKEN),
        json={"source": model, "destination": model + "-2"},
    )
    for name in (model, model + "-2"):
        requests.delete(secured.url + "/api/delete", headers=ADMIN, json={"model": name})
    key_name, key = new_key(secured, models=[model])
    requests.delete(secured.url + "/api/keys", headers=ADMIN, json={"name": key_name})
    # Refused attempts, with secrets in every header: no audit line, no secret logged.
    _, client_key = new_key(secured)
    for headers in (
        bearer(client_key),
        {"x-api-key": ADMIN_TOKEN[:-1] + "Z"},
        {"api-key": "orl-wrong-" + REMOTE_KEY},
    ):
        requests.delete(secured.url + "/api/delete", headers=headers, json={"model": model})

    names = {model, model + ":latest", model + "-2", model + "-2:latest"}
    lines = [line for line in audit_lines(secured) if line["object"] in names]
    assert [(line["actor"], line["action"], line["object"].split(":")[0]) for line in lines] == [
        ("admin", "model.create", model),
        ("admin", "model.replace", model),
        ("admin", "model.copy", model + "-2"),
        ("admin", "model.delete", model),
        ("admin", "model.delete", model + "-2"),
    ]
    assert [line["action"] for line in audit_lines(secured, key_name)] == [
        "key.create",
        "key.revoke",
    ]
    for line in audit_lines(secured, key_name) + lines:
        assert line["logger"] == "app.audit" and line["audit"] is True
    log = secured.log()
    for secret in (
        ADMIN_TOKEN,
        SECOND_ADMIN_TOKEN,
        REMOTE_KEY,
        key,
        client_key,
        ADMIN_TOKEN[:-1] + "Z",
        key[4:20],
    ):
        assert secret not in log


def test_the_audit_names_a_model_alike_in_every_action(secured, upstream):
    # A log shipper follows one model by its `object`: created as "m:latest",
    # it must be deleted as "m:latest" too, whichever spelling the client used.
    model = unique("followed")
    model_for(secured, upstream.url, model)
    requests.delete(secured.url + "/api/delete", headers=ADMIN, json={"model": model})
    assert [line["action"] for line in audit_lines(secured, model + ":latest")] == [
        "model.create",
        "model.delete",
    ]
