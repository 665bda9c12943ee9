"""Prices on models and cost in usage rows, as integers of pico-units
(app/spend/money.py): a model's price per token, a usage row's cost, and how
many of its requests had no price."""

from peewee import BigIntegerField, IntegerField
from playhouse.migrate import migrate


def up(migrator, db):
    migrate(
        migrator.add_column("remote_model", "price_input", BigIntegerField(null=True)),
        migrator.add_column("remote_model", "price_output", BigIntegerField(null=True)),
        migrator.add_column("remote_model", "price_cached_input", BigIntegerField(null=True)),
        migrator.add_column("daily_usage", "cost", BigIntegerField(default=0)),
        migrator.add_column("daily_usage", "unpriced", IntegerField(default=0)),
    )


def down(migrator, db):
    migrate(
        migrator.drop_column("daily_usage", "unpriced"),
        migrator.drop_column("daily_usage", "cost"),
        migrator.drop_column("remote_model", "price_cached_input"),
        migrator.drop_column("remote_model", "price_output"),
        migrator.drop_column("remote_model", "price_input"),
    )
