"""peewee models. The schema itself is owned by migrations/."""
import datetime
import json

from peewee import CharField, DateTimeField, Model, TextField

from app.db import database


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class JSONField(TextField):
    """JSON kept as text: the same column type on SQLite and PostgreSQL."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    # Bound to the proxy, so create_app() can point every model at the
    # database its settings name.
    class Meta:
        database = database


class RemoteModel(BaseModel):
    name = CharField(max_length=255, unique=True)
    remote_model = CharField(max_length=255)
    remote_host = CharField(max_length=2048)
    remote_type = CharField(max_length=16)
    # Fernet token (app/crypto.py); the plaintext key never reaches a column.
    api_key = TextField(null=True)
    system = TextField(null=True)
    parameters = JSONField(default=dict)
    parent_model = CharField(max_length=255, null=True)
    digest = CharField(max_length=80)
    created_at = DateTimeField(default=utcnow)
    modified_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "remote_model"


class StoredResponse(BaseModel):
    """A Responses API response kept for previous_response_id and GET /v1/responses."""
    id = CharField(max_length=64, primary_key=True)
    model = CharField(max_length=255)
    previous_response_id = CharField(max_length=64, null=True)
    created_at = DateTimeField(default=utcnow, index=True)
    input_items = JSONField()
    # The conversation so far as chat messages (without instructions, which
    # are never carried over), so a follow-up needs no rebuilding.
    history = JSONField()
    response = JSONField()

    class Meta:
        table_name = "stored_response"
