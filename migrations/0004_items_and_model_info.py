"""Output items by id (so `item_reference` input items can be resolved), and
the context length and capabilities a model is described with."""

import json

from peewee import CharField, IntegerField, Model, TextField
from playhouse.migrate import migrate


def _tables(db):
    # A frozen copy of the table as this migration creates it.
    class ResponseItem(Model):
        item_id = CharField(max_length=64, primary_key=True)
        response_id = CharField(max_length=64, index=True)

        class Meta:
            database = db
            table_name = "response_item"

    return [ResponseItem]


def _backfill(db, item_table):
    # Every output item of every stored response gets its row, so references
    # to responses stored before this migration resolve too.
    cursor = db.execute_sql("SELECT id, response FROM stored_response")
    rows = []
    for response_id, response in cursor.fetchall():
        for item in json.loads(response).get("output") or []:
            if isinstance(item, dict) and item.get("id"):
                rows.append({"item_id": item["id"], "response_id": response_id})
    for start in range(0, len(rows), 500):
        item_table.insert_many(rows[start : start + 500]).on_conflict_ignore().execute()


def up(migrator, db):
    tables = _tables(db)
    db.create_tables(tables)
    _backfill(db, tables[0])
    migrate(
        migrator.add_column("remote_model", "context_length", IntegerField(null=True)),
        migrator.add_column("remote_model", "capabilities", TextField(null=True)),
    )


def down(migrator, db):
    migrate(
        migrator.drop_column("remote_model", "capabilities"),
        migrator.drop_column("remote_model", "context_length"),
    )
    db.drop_tables(_tables(db))
