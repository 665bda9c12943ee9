"""Stored Responses API responses: what previous_response_id and GET /v1/responses read."""

from peewee import CharField, DateTimeField, Model, TextField


def _tables(db):
    class StoredResponse(Model):
        id = CharField(max_length=64, primary_key=True)
        model = CharField(max_length=255)
        previous_response_id = CharField(max_length=64, null=True)
        created_at = DateTimeField(index=True)
        input_items = TextField()
        history = TextField()
        response = TextField()

        class Meta:
            database = db
            table_name = "stored_response"

    return [StoredResponse]


def up(migrator, db):
    db.create_tables(_tables(db))


def down(migrator, db):
    db.drop_tables(_tables(db))
