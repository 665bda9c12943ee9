"""Schema migrations: `ollama-relay db upgrade`, concurrent starts, up and down."""

import fcntl
import os
import sqlite3
import subprocess
import time

from playhouse.migrations import Migration, Runner

from app.storage import db
from tests.support.cli import cli_process
from tests.support.config import relay_settings
from tests.support.paths import CLI

ALL = [m.name for m in Migration.load_directory(db.MIGRATIONS_DIR)]


def run_cli(settings, *args):
    """The console script in a process of its own: these tests are about processes."""
    return cli_process(settings)(*args, expect=None)


def test_db_upgrade_applies_then_reports_current(settings):
    first = run_cli(settings, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "applied: " + ", ".join(ALL)
    again = run_cli(settings, "db", "upgrade")
    assert again.returncode == 0 and again.stdout.strip() == "schema is current"


def test_concurrent_upgrades_apply_each_migration_once(settings, app):
    # `app` already migrated this database; start from nothing instead.
    with app.app_context():
        Runner(db.database.obj, db.MIGRATIONS_DIR).down(target=ALL[0])
        assert db.pending_migrations() == ALL
    env = dict(os.environ, **{k: str(v) for k, v in settings.items()})
    procs = [
        subprocess.Popen(
            [CLI, "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outputs]
    assert sorted(out.strip() for out, _ in outputs) == (
        ["applied: " + ", ".join(ALL)] + ["schema is current"] * 5
    )
    with app.app_context():
        assert db.pending_migrations() == []


def test_a_fresh_sqlite_file_waits_for_the_process_migrating_it(tmp_path):
    """Two workers of a fresh install start at once: the second must wait for
    the first, not fail to boot. Here the test is the first: it holds the
    migration lock and a write on the new file, not yet in WAL mode."""
    path = tmp_path / "fresh.sqlite3"
    settings = relay_settings(tmp_path, f"sqlite:///{path}")
    env = dict(os.environ, **settings)
    with open(f"{path}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        first = sqlite3.connect(path, isolation_level=None)
        first.execute("BEGIN IMMEDIATE")
        second = subprocess.Popen(
            [CLI, "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)  # the second connects meanwhile unless it waits for the lock
        first.execute("COMMIT")
        first.close()
        fcntl.flock(lock, fcntl.LOCK_UN)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert out.strip() == "applied: " + ", ".join(ALL)


def test_every_migration_goes_down_and_up_again(app):
    with app.app_context():
        runner = Runner(db.database.obj, db.MIGRATIONS_DIR)
        names = [m.name for m in runner.status()]
        assert runner.down(target=names[0]) == list(reversed(names))
        assert not db.database.table_exists("remote_model")
        assert runner.up() == names
        assert db.database.table_exists("remote_model")


def test_responses_stored_before_the_item_index_can_be_referenced(app):
    import json

    from app.surfaces.responses import store as responses_store

    with app.app_context():
        runner = Runner(db.database.obj, db.MIGRATIONS_DIR)
        runner.down(target="0004_items_and_model_info")
        db.database.execute_sql(
            "INSERT INTO stored_response (id, model, created_at, input_items, history, "
            "response) VALUES ('resp_old', 'm:latest', CURRENT_TIMESTAMP, '[]', '[]', %s)".replace(
                "%s", db.database.param
            ),
            (json.dumps({"id": "resp_old", "output": [{"id": "msg_old", "type": "message"}]}),),
        )
        runner.up()
        assert responses_store.output_items(["msg_old"], 30) == {
            "msg_old": {"id": "msg_old", "type": "message"}
        }


def test_cli_reports_a_bad_setting_with_exit_code_2(settings):
    result = run_cli(dict(settings, RELAY_DATABASE_MAX_CONNECTIONS="many"), "db", "upgrade")
    assert result.returncode == 2
    assert "RELAY_DATABASE_MAX_CONNECTIONS" in result.stderr
    assert "Traceback" not in result.stderr


def test_sqlite_is_tuned_for_concurrent_workers_and_postgresql_is_pooled(app, database_url):
    from playhouse.pool import PooledDatabase

    with app.app_context():
        database = db.database.obj
        if database_url.startswith("sqlite"):
            assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert database.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 5000
        else:
            assert isinstance(database, PooledDatabase)


def test_stored_conversations_survive_the_move_to_linked_turns(app, upstream):
    """Rows written in the layout before 0006 (each with its whole history)
    become one turn each, linked; every response still reads and continues."""
    import json

    def user(text):
        return {"role": "user", "content": text}

    def answer(text):
        return {"role": "assistant", "content": text}

    turns = [[user(f"q{n}"), answer(f"a{n}")] for n in range(4)]
    old = [  # id, previous, history
        ("resp_a", None, turns[0]),
        ("resp_b", "resp_a", turns[0] + turns[1]),
        ("resp_c", "resp_b", turns[0] + turns[1] + turns[2]),
        # Its previous response was deleted before the upgrade.
        ("resp_d", "resp_gone", turns[0] + turns[3]),
        # Continued from resp_a, then resp_a was continued again: a fork.
        ("resp_e", "resp_a", turns[0] + turns[3]),
    ]
    with app.app_context():
        runner = Runner(db.database.obj, db.MIGRATIONS_DIR)
        runner.down(target="0006_linked_responses")
        for row_id, previous, history in old:
            response = {
                "id": row_id,
                "object": "response",
                "model": "remote:latest",
                "output": [{"id": f"msg_{row_id}", "type": "message"}],
            }
            db.database.execute_sql(
                "INSERT INTO stored_response (id, model, previous_response_id, created_at, "
                "input_items, history, response, owner) VALUES (?, 'remote:latest', ?, "
                "CURRENT_TIMESTAMP, ?, ?, ?, '-')".replace("?", db.database.param),
                (
                    row_id,
                    previous,
                    json.dumps([{"id": f"in_{row_id}"}]),
                    json.dumps(history),
                    json.dumps(response),
                ),
            )
            db.database.execute_sql(
                "INSERT INTO response_item (item_id, response_id) VALUES (?, ?)".replace(
                    "?", db.database.param
                ),
                (f"msg_{row_id}", row_id),
            )
        # 0006 first; later migrations (prices, ...) follow it.
        assert runner.up()[0] == "0006_linked_responses"
        stored = {
            row_id: (parent, json.loads(messages))
            for row_id, parent, messages in db.database.execute_sql(
                "SELECT id, parent_id, messages FROM stored_response"
            )
        }
    assert stored == {
        "resp_a": (None, turns[0]),
        "resp_b": ("resp_a", turns[1]),
        "resp_c": ("resp_b", turns[2]),
        "resp_d": (None, turns[0] + turns[3]),
        "resp_e": ("resp_a", turns[3]),
    }

    client = app.test_client()
    assert (
        client.post(
            "/api/create",
            json={
                "name": "remote",
                "from": "remote-model",
                "remote_type": "openai",
                "stream": False,
                "remote_host": upstream.url + "/v1",
            },
        ).status_code
        == 200
    )
    for row_id, _, history in old:
        fetched = client.get(f"/v1/responses/{row_id}")
        assert fetched.status_code == 200 and fetched.get_json()["id"] == row_id
        assert client.get(f"/v1/responses/{row_id}/input_items").get_json()["data"] == [
            {"id": f"in_{row_id}"}
        ]
        follow = client.post(
            "/v1/responses",
            json={"model": "remote", "input": "next", "previous_response_id": row_id},
        )
        assert follow.status_code == 200, follow.get_data(as_text=True)
        assert upstream.last.body["messages"] == history + [user("next")]
    # Deleting the start of a conversation converted from the old layout
    # keeps the later turns working, as before.
    assert client.delete("/v1/responses/resp_a").status_code == 200
    assert (
        client.post(
            "/v1/responses",
            json={"model": "remote", "input": "again", "previous_response_id": "resp_c"},
        ).status_code
        == 200
    )
    assert upstream.last.body["messages"] == turns[0] + turns[1] + turns[2] + [user("again")]
    # And back down: every row has its whole history again.
    with app.app_context():
        runner = Runner(db.database.obj, db.MIGRATIONS_DIR)
        runner.down(target="0006_linked_responses")
        history = db.database.execute_sql(
            "SELECT history FROM stored_response WHERE id = 'resp_c'"
        ).fetchone()[0]
        assert json.loads(history) == turns[0] + turns[1] + turns[2]
        assert (
            db.database.execute_sql(
                "SELECT COUNT(*) FROM stored_response WHERE id = 'resp_a'"
            ).fetchone()[0]
            == 0
        )


def test_models_made_before_the_forwarding_policy_keep_its_safe_default(app, client, upstream):
    """A model created before 0009 forwards none of the governed fields and
    allows one choice after the upgrade, and still serves."""
    from tests.support.models import create_model

    create_model(client, "old", upstream.url + "/v1")
    with app.app_context():
        runner = Runner(db.database.obj, db.MIGRATIONS_DIR)
        runner.down(target="0009_forwarded_fields")
        columns = {c.name for c in db.database.get_columns("remote_model")}
        assert "forward" not in columns and "max_n" not in columns
        # 0009 first (later migrations, undone with it, follow).
        assert runner.up()[0] == "0009_forwarded_fields"
    shown = client.post("/api/show", json={"model": "old"}).get_json()
    assert "forward" not in shown and "max_n" not in shown
    answer = client.post(
        "/v1/chat/completions",
        json={"model": "old", "messages": [{"role": "user", "content": "hi"}], "store": True},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "store" not in upstream.last.body
    refused = client.post(
        "/v1/chat/completions",
        json={"model": "old", "messages": [{"role": "user", "content": "hi"}], "n": 2},
    )
    assert refused.status_code == 400 and refused.get_json()["error"]["param"] == "n"
    with app.app_context():
        # Written now, while this test's database is there to take it.
        app.extensions["relay.flush_usage"]()


def test_models_made_before_reasoning_none_send_none_after_the_upgrade(app, client, upstream):
    """A model created before 0010 takes reasoning_effort "none" (the default)."""
    from tests.support.models import create_model

    create_model(client, "old", upstream.url + "/v1")
    digest = client.get("/api/tags").get_json()["models"][0]["digest"]
    with app.app_context():
        runner = Runner(db.database.obj, db.MIGRATIONS_DIR)
        runner.down(target="0010_reasoning_none")
        assert "reasoning_none" not in {c.name for c in db.database.get_columns("remote_model")}
        assert runner.up()[0] == "0010_reasoning_none"
    shown = client.post("/api/show", json={"model": "old"}).get_json()
    assert "reasoning_none" not in shown
    assert client.get("/api/tags").get_json()["models"][0]["digest"] == digest
    answer = client.post(
        "/v1/chat/completions",
        json={
            "model": "old",
            "messages": [{"role": "user", "content": "hi"}],
            "reasoning_effort": "none",
        },
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert upstream.last.body["reasoning_effort"] == "none"
    with app.app_context():
        app.extensions["relay.flush_usage"]()


def test_models_stored_with_one_digest_for_two_keys_get_two(app, client, upstream):
    """Rows stored before 0011 whose models differ only in their key shared a
    digest (it left the key out); after the upgrade they do not."""
    from tests.support.models import create_model

    create_model(client, "team-a", upstream.url + "/v1", remote_api_key="sk-a-0123456789")
    create_model(client, "team-b", upstream.url + "/v1", remote_api_key="sk-b-9876543210")
    with app.app_context():
        runner = Runner(db.database.obj, db.MIGRATIONS_DIR)
        runner.down(target="0012_digests_with_keys")
        db.database.execute_sql("UPDATE remote_model SET digest = 'sha256:' || 'shared'")
        assert runner.up() == ["0012_digests_with_keys"]
        digests = {
            name: digest
            for name, digest in db.database.execute_sql("SELECT name, digest FROM remote_model")
        }
    assert digests["team-a:latest"] != digests["team-b:latest"]
    assert all(d.startswith("sha256:") and len(d) == 71 for d in digests.values())
