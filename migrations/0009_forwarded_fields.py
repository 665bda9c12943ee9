"""Per-model policy for the Chat Completions fields that make a provider store
data or bill beyond the token price (app/chat/forwarding.py): the ones the
model forwards (`forward`, a JSON list; null: none) and the most choices a
request may ask for (`max_n`; null: 1)."""

from peewee import IntegerField, TextField
from playhouse.migrate import migrate


def up(migrator, db):
    migrate(
        migrator.add_column("remote_model", "forward", TextField(null=True)),
        migrator.add_column("remote_model", "max_n", IntegerField(null=True)),
    )


def down(migrator, db):
    migrate(
        migrator.drop_column("remote_model", "max_n"),
        migrator.drop_column("remote_model", "forward"),
    )
