"""Remote API keys are encrypted at rest and readable under a rotated key list."""

import json
import os
import stat

import pytest
from cryptography.fernet import Fernet

from app.config import ConfigError
from app.storage.models import RemoteModel
from tests.support.models import create_model

KEY = "sk-relay-SECRET-0123456789abcdef"


def create_with_key(client):
    create_model(
        client,
        "m",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        remote_api_key=KEY,
        **{"from": "qwen-plus"},
    )


def raw_database_text(app):
    """Everything the database holds, read past the ORM."""
    url = app.config["RELAY_DATABASE_URL"]
    if url.startswith("sqlite"):
        path = url[len("sqlite:///") :]
        chunks = []
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                with open(path + suffix, "rb") as handle:
                    chunks.append(handle.read().decode("latin-1"))
        return "".join(chunks)
    from app.storage.db import database

    cursor = database.execute_sql("SELECT t::text FROM remote_model t")
    return "\n".join(row[0] for row in cursor.fetchall())


def fragments(secret, size=8):
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def test_database_holds_no_key_material(app, client):
    create_with_key(client)
    with app.app_context():
        text = raw_database_text(app)
        stored = RemoteModel.get().api_key
    assert "dashscope" in text  # we really read the rows
    assert not [f for f in fragments(KEY) if f in text]
    assert app.extensions["relay.keyring"].decrypt(stored) == KEY


def test_rotation_old_key_still_decrypts_and_rotate_moves_to_new(make_app, settings):
    old = settings["RELAY_SECRET_KEY"]
    first = make_app()
    create_with_key(first.test_client())
    with first.app_context():
        token = RemoteModel.get().api_key

    new = Fernet.generate_key().decode()
    rotated = make_app(RELAY_SECRET_KEY=f"{new},{old}")
    keyring = rotated.extensions["relay.keyring"]
    assert keyring.decrypt(token) == KEY
    fresh = keyring.rotate(token)
    only_new = make_app(RELAY_SECRET_KEY=new).extensions["relay.keyring"]
    assert only_new.decrypt(fresh) == KEY
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        only_new.decrypt(token)


def test_development_key_file_is_private_and_reused(make_app, tmp_path, capsys):
    instance = tmp_path / "dev-instance"
    first = make_app(RELAY_SECRET_KEY="", RELAY_INSTANCE_PATH=str(instance))
    key_file = instance / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(
        line["level"] == "WARNING" and "RELAY_SECRET_KEY is not set" in line["message"]
        for line in logged
    )
    token = first.extensions["relay.keyring"].encrypt(KEY)
    second = make_app(RELAY_SECRET_KEY="", RELAY_INSTANCE_PATH=str(instance))
    assert second.extensions["relay.keyring"].decrypt(token) == KEY


def test_malformed_secret_key_is_a_clear_config_error(make_app):
    with pytest.raises(ConfigError, match="RELAY_SECRET_KEY"):
        make_app(RELAY_SECRET_KEY="not-a-fernet-key")
