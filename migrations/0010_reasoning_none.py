"""Per-model: whether the remote takes `reasoning_effort: "none"` (the way a
client turns reasoning off). Null: it does; false: the relay drops "none" and
the remote thinks as it would by default."""

from peewee import BooleanField
from playhouse.migrate import migrate


def up(migrator, db):
    migrate(migrator.add_column("remote_model", "reasoning_none", BooleanField(null=True)))


def down(migrator, db):
    migrate(migrator.drop_column("remote_model", "reasoning_none"))
