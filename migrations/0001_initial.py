"""Remote models: what /api/create registers and every API resolves."""

import datetime

from peewee import CharField, DateTimeField, Model, TextField


def _tables(db):
    # A frozen copy of the table as this migration creates it; app/models.py
    # may move on, this must not.
    class RemoteModel(Model):
        name = CharField(max_length=255, unique=True)
        remote_model = CharField(max_length=255)
        remote_host = CharField(max_length=2048)
        remote_type = CharField(max_length=16)
        api_key = TextField(null=True)
        system = TextField(null=True)
        parameters = TextField(default="{}")
        parent_model = CharField(max_length=255, null=True)
        digest = CharField(max_length=80)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        modified_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            database = db
            table_name = "remote_model"

    return [RemoteModel]


def up(migrator, db):
    db.create_tables(_tables(db))


def down(migrator, db):
    db.drop_tables(_tables(db))
