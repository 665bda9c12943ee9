"""The `ollama-relay` admin CLI on SQLite and PostgreSQL: the models, secrets and
check commands in this process (Flask's test_cli_runner), and the installed
console script for the errors only it reports (configuration, database).

Exit codes: 0 success, 1 a lookup or check failed, 2 bad usage or configuration.
Every run is checked for the API key: no output may ever contain it.
"""

import json

import pytest
from cryptography.fernet import Fernet
from playhouse.migrations import Runner

from app import create_app
from app.storage import db
from app.storage.models import RemoteModel
from tests.support.cli import cli_in, cli_process
from tests.support.config import SECRET_KEY, relay_settings
from tests.support.fake_upstream import Reply
from tests.support.servers import free_port

KEY = "sk-cli-DISTINCT-5e1f0a9c7b3d4411"
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def cli(app):
    """The CLI in this process on this test's app (migrated), through Flask's
    test_cli_runner: CLI_TEST_KEY holds the key --api-key-env names."""
    return cli_on(app)


def cli_on(app):
    """The CLI on another app of the test's database (other settings)."""
    return cli_in(app, secrets=(KEY,), env={"CLI_TEST_KEY": KEY})


@pytest.fixture
def sqlite_cli(tmp_path):
    """For what does not depend on the database: usage errors."""
    return cli_on(create_app(relay_settings(tmp_path, f"sqlite:///{tmp_path}/cli.sqlite3")))


@pytest.fixture
def script(tmp_path):
    """The installed console script, for what only it shows: configuration and
    database errors, reported before any app exists."""
    settings = relay_settings(tmp_path, f"sqlite:///{tmp_path}/cli.sqlite3")
    run = cli_process(settings, secrets=(KEY,), env={"CLI_TEST_KEY": KEY})
    run("db", "upgrade")
    return run


def create(cli, name, host, remote_type="openai", *extra, expect=0):
    return cli(
        "models",
        "create",
        name,
        "--from",
        "remote-model",
        "--remote-host",
        host,
        "--remote-type",
        remote_type,
        "--api-key-env",
        "CLI_TEST_KEY",
        *extra,
        expect=expect,
    )


def stored_keys(app):
    with app.app_context():
        return {m.name: m.api_key for m in RemoteModel.select()}


def rows(app):
    with app.app_context():
        return [
            (m.name, m.api_key, m.modified_at)
            for m in RemoteModel.select().order_by(RemoteModel.id)
        ]


# --- models ------------------------------------------------------------------


def test_models_create_takes_the_forwarding_policy(cli, app, upstream):
    host = upstream.url + "/v1"
    create(cli, "m", host, "openai", "--forward", "metadata", "--forward", "store", "--max-n", "4")
    shown = json.loads(cli("models", "show", "m").stdout)
    assert (shown["forward"], shown["max_n"]) == (["store", "metadata"], 4)
    answer = app.test_client().post(
        "/v1/chat/completions",
        json={"model": "m", "n": 4, "store": True, "service_tier": "priority", **CHAT},
    )
    assert answer.status_code == 200
    assert (upstream.last.body["n"], upstream.last.body["store"]) == (4, True)
    assert "service_tier" not in upstream.last.body
    # Without them: the safe default, which `show` leaves unsaid.
    create(cli, "m", host, "openai")
    shown = json.loads(cli("models", "show", "m").stdout)
    assert "forward" not in shown and "max_n" not in shown
    refused = create(cli, "m", host, "openai", "--forward", "temperature", expect=2)
    assert "--forward" in refused.stderr
    refused = create(cli, "m", host, "openai", "--max-n", "0", expect=2)
    assert "--max-n" in refused.stderr
    with app.app_context():
        app.extensions["relay.flush_usage"]()


def test_models_create_takes_reasoning_none(cli, app, upstream):
    host = upstream.url + "/v1"
    create(cli, "m", host, "openai", "--no-reasoning-none")
    assert json.loads(cli("models", "show", "m").stdout)["reasoning_none"] is False
    off = {"model": "m", "reasoning_effort": "none", **CHAT}
    assert app.test_client().post("/v1/chat/completions", json=off).status_code == 200
    assert "reasoning_effort" not in upstream.last.body
    create(cli, "m", host, "openai")
    assert "reasoning_none" not in json.loads(cli("models", "show", "m").stdout)
    assert app.test_client().post("/v1/chat/completions", json=off).status_code == 200
    assert upstream.last.body["reasoning_effort"] == "none"
    with app.app_context():
        app.extensions["relay.flush_usage"]()


def test_models_create_list_show_delete(cli, app, upstream):
    result = create(
        cli,
        "m",
        upstream.url + "/v1",
        "openai",
        "--system",
        "Be brief.",
        "--parameter",
        "temperature=0.2",
        "--parameter",
        "stop=<end>",
        "--parameter",
        "stop=###",
    )
    assert result.stdout == "created m:latest\n"
    cli("models", "create", "local", "--from", "llama3", "--remote-host", upstream.url)

    listed = cli("models", "list").stdout
    assert listed.splitlines() == [
        f"local:latest\tollama\tllama3\t{upstream.url}",
        f"m:latest\topenai\tremote-model\t{upstream.url}/v1",
    ]
    as_json = json.loads(cli("models", "list", "--json").stdout)
    assert [(m["name"], m["has_api_key"]) for m in as_json] == [
        ("local:latest", False),
        ("m:latest", True),
    ]

    shown = json.loads(cli("models", "show", "m").stdout)
    assert shown == app.test_client().post("/api/show", json={"model": "m"}).get_json()
    assert shown["system"] == "Be brief." and shown["remote_type"] == "openai"
    assert shown["parameters"] == 'stop "<end>"\nstop "###"\ntemperature 0.2'

    assert cli("models", "delete", "m").stdout == "deleted m:latest\n"
    gone = cli("models", "show", "m", expect=1)
    assert gone.stdout == "" and "model 'm' not found" in gone.stderr
    assert "model 'm' not found" in cli("models", "delete", "m", expect=1).stderr


def test_models_list_empty(cli):
    assert cli("models", "list").stdout == ""
    assert json.loads(cli("models", "list", "--json").stdout) == []


def test_api_key_from_env_or_stdin_is_encrypted_with_the_relays_key(cli, app, upstream):
    create(cli, "from-env", upstream.url + "/v1")
    cli(
        "models",
        "create",
        "from-stdin",
        "--from",
        "x",
        "--remote-host",
        upstream.url,
        "--api-key-stdin",
        input=KEY + "\n",
    )
    keyring = app.extensions["relay.keyring"]
    tokens = stored_keys(app)
    assert keyring.decrypt(tokens["from-env:latest"]) == KEY
    assert keyring.decrypt(tokens["from-stdin:latest"]) == KEY


def test_create_applies_the_remote_host_policy(cli):
    refused = create(cli, "m", "http://10.20.30.40/v1", expect=2)
    assert "--remote-host" in refused.stderr and "RELAY_REMOTE_ALLOWLIST" in refused.stderr
    assert cli("models", "list").stdout == ""


@pytest.mark.parametrize(
    "args, names",
    [
        (["--remote-type", "anthropic"], "--remote-type"),
        (["--remote-host", "ftp://example.com"], "--remote-host"),
        (["--from", ""], "--from"),
        (["--parameter", "temperature"], "--parameter"),
        (["--api-key-env", "NO_SUCH_VARIABLE_HERE"], "--api-key-env"),
        (["--api-key-env", "CLI_TEST_KEY", "--api-key-stdin"], "--api-key-stdin"),
        # Keys never come from argv: there is no such option, and it is not echoed.
        (["--api-key", KEY], "--api-key"),
    ],
)
def test_create_bad_usage_exits_2_naming_the_option(sqlite_cli, args, names):
    base = ["models", "create", "m", "--from", "x", "--remote-host", "https://example.com/v1"]
    result = sqlite_cli(*base, *args, expect=2)
    assert names in result.stderr and result.stdout == ""


def test_missing_remote_host_and_invalid_names_exit_2(sqlite_cli):
    missing = sqlite_cli("models", "create", "m", "--from", "x", expect=2)
    assert "--remote-host" in missing.stderr
    for args in (
        ["create", "no spaces!", "--from", "x", "--remote-host", "https://h.example"],
        ["show", "no spaces!"],
        ["delete", "no spaces!"],
    ):
        bad = sqlite_cli("models", *args, expect=2)
        assert "'NAME'" in bad.stderr and "not a valid model name" in bad.stderr


# --- secrets rotate ----------------------------------------------------------


def test_secrets_rotate_moves_every_key_to_the_first_key(cli, app, make_app, upstream):
    old, new = SECRET_KEY, Fernet.generate_key().decode()
    create(cli, "m", upstream.url + "/v1")
    cli("models", "create", "keyless", "--from", "x", "--remote-host", upstream.url)
    # A derived model (HTTP API) shares its parent's token; it is rotated too.
    app.test_client().post("/api/create", json={"name": "derived", "from": "m", "stream": False})
    before = stored_keys(app)

    result = cli_on(make_app(RELAY_SECRET_KEY=f"{new},{old}"))("secrets", "rotate")
    assert result.stdout == "re-encrypted 2 keys\n"
    after = stored_keys(app)
    assert after["keyless:latest"] is None
    assert all(after[name] != before[name] for name in ("m:latest", "derived:latest"))

    # The old key is dropped: the relay still calls the remote with the original key.
    only_new = make_app(RELAY_SECRET_KEY=new).test_client()
    for model in ("m", "derived"):
        response = only_new.post("/v1/chat/completions", json={"model": model, **CHAT})
        assert response.status_code == 200, response.get_json()
        assert upstream.last.headers["authorization"] == f"Bearer {KEY}"
    cli_on(make_app(RELAY_SECRET_KEY=new))("check")


def test_secrets_rotate_changes_nothing_if_one_key_cannot_be_decrypted(
    cli, app, make_app, upstream
):
    new = Fernet.generate_key().decode()
    for name in ("first", "second", "third"):
        create(cli, name, upstream.url + "/v1")
    # The last row processed holds a token no configured key can read.
    stranger = Fernet(Fernet.generate_key()).encrypt(KEY.encode()).decode()
    with app.app_context():
        RemoteModel.update(api_key=stranger).where(RemoteModel.name == "third:latest").execute()
    before = rows(app)

    rotating = cli_on(make_app(RELAY_SECRET_KEY=f"{new},{SECRET_KEY}"))
    result = rotating("secrets", "rotate", expect=1)
    assert result.stdout == ""
    assert "'third:latest'" in result.stderr and "nothing was changed" in result.stderr
    assert "first" not in result.stderr
    assert rows(app) == before

    checked = cli("check", expect=1)
    assert "FAIL\tmodel 'third:latest': a stored API key cannot be decrypted" in checked.stdout
    assert "ok\tmodel 'first:latest'" in checked.stdout


# --- check -------------------------------------------------------------------


def test_check_passes_probing_each_remote_with_its_key(cli, upstream):
    create(cli, "a-openai", upstream.url + "/v1?tenant=t1")
    create(cli, "b-ollama", upstream.url, "ollama")
    upstream.reset()
    upstream.reply(Reply(json={"object": "list", "data": []}))  # /models; /api/version: 404

    result = cli("check")
    assert result.stdout.splitlines() == [
        "ok\tconfig: settings are valid",
        "ok\tdatabase: answers, schema is current",
        f"ok\tmodel 'a-openai:latest': {upstream.url} reachable (HTTP 200)",
        f"ok\tmodel 'b-ollama:latest': {upstream.url} reachable (HTTP 404)",
    ]
    probes = [(r.method, r.path, r.query, r.headers["authorization"]) for r in upstream.requests]
    assert probes == [
        ("GET", "/v1/models", {"tenant": ["t1"]}, f"Bearer {KEY}"),
        ("GET", "/api/version", {}, f"Bearer {KEY}"),
    ]


def test_check_with_no_models_passes(cli):
    assert cli("check").stdout.splitlines()[-1] == "ok\tmodels: none defined"


def test_check_fails_on_a_rejected_key_without_printing_it(cli, upstream):
    create(cli, "a-openai", upstream.url + "/v1")
    create(cli, "b-ollama", upstream.url, "ollama")
    # A provider that echoes the key it refused: the relay scrubs it.
    upstream.reply(
        Reply(status=401, json={"error": {"message": f"Incorrect API key {KEY}"}}),
        Reply(status=403, json={"error": "forbidden"}),
    )
    result = cli("check", expect=1)
    lines = result.stdout.splitlines()
    assert lines[2] == (
        f"FAIL\tmodel 'a-openai:latest': key rejected by {upstream.url}: "
        f"API error (401): Incorrect API key ***"
    )
    assert lines[3].startswith("FAIL\tmodel 'b-ollama:latest': key rejected")
    assert "check failed: 2 of 4 checks failed" in result.stderr


def test_check_fails_on_an_unreachable_remote(cli, upstream):
    host = f"http://127.0.0.1:{free_port()}"
    create(cli, "gone", host + "/v1")
    create(cli, "here", upstream.url + "/v1")
    result = cli("check", expect=1)
    assert f"FAIL\tmodel 'gone:latest': {host} refused the connection" in result.stdout
    assert f"ok\tmodel 'here:latest': {upstream.url} reachable" in result.stdout


def test_schema_not_current_fails_check_and_commands(cli, app):
    with app.app_context():
        Runner(db.database.obj, db.MIGRATIONS_DIR).down(target="0001_initial")
    result = cli("check", expect=1)
    assert "FAIL\tdatabase: schema not current" in result.stdout
    assert "ollama-relay db upgrade" in result.stdout
    assert "ollama-relay db upgrade" in cli("models", "list", expect=1).stderr
    cli("db", "upgrade")
    cli("check")


def test_unreachable_database_exits_1(script):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/relay"
    checked = script("check", expect=1, RELAY_DATABASE_URL=url)
    assert "FAIL\tdatabase: unreachable" in checked.stdout
    listed = script("models", "list", expect=1, RELAY_DATABASE_URL=url)
    assert listed.stderr.startswith("ollama-relay: database error")


def test_bad_configuration_exits_2(script):
    for command in (["check"], ["models", "list"], ["secrets", "rotate"]):
        result = script(*command, expect=2, RELAY_SECRET_KEY="not-a-fernet-key")
        assert "configuration error: RELAY_SECRET_KEY" in result.stderr
