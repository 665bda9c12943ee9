"""Fallback models: local models tried in order when a model's remote fails."""

from peewee import BooleanField, TextField
from playhouse.migrate import migrate


def up(migrator, db):
    migrate(
        migrator.add_column("remote_model", "fallbacks", TextField(null=True)),
        migrator.add_column("remote_model", "fallback_on_auth_errors", BooleanField(default=False)),
    )


def down(migrator, db):
    migrate(
        migrator.drop_column("remote_model", "fallback_on_auth_errors"),
        migrator.drop_column("remote_model", "fallbacks"),
    )
