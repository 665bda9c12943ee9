"""Teams of client keys, budgets on keys and teams, and usage rows per team.

Budgets are kept by `budget_spend` (what each budget has spent and what is
held in workers' leases, per period window) and `budget_lease` (each
worker's outstanding lease, so that a dead worker's expires).

A key belongs to at most one team (client_key.team, the team's name). Usage
rows carry the team the key was in when the request ran ("-": none), so a
key that moves keeps its past usage where it was spent. Budgets are amounts
in pico-units (app/spend/money.py) per `period` (day, month or total).
"""

import datetime

from peewee import (
    BigIntegerField,
    CharField,
    CompositeKey,
    DateTimeField,
    DoubleField,
    IntegerField,
    Model,
    TextField,
)
from playhouse.migrate import migrate


def _tables(db):
    # A frozen copy of the table as this migration creates it.
    class Team(Model):
        name = CharField(max_length=64, unique=True)
        models = TextField(null=True)
        rpm = IntegerField(null=True)
        tpm = IntegerField(null=True)
        budget = BigIntegerField(null=True)
        period = CharField(max_length=8, null=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            database = db
            table_name = "team"

    class BudgetSpend(Model):
        scope = CharField(max_length=8)
        name = CharField(max_length=64)
        window = CharField(max_length=10)
        spent = BigIntegerField(default=0)
        held = BigIntegerField(default=0)
        alerted = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "budget_spend"
            primary_key = CompositeKey("scope", "name", "window")

    class BudgetLease(Model):
        holder = CharField(max_length=80)
        scope = CharField(max_length=8)
        name = CharField(max_length=64)
        window = CharField(max_length=10)
        amount = BigIntegerField(default=0)
        expires_at = DoubleField()

        class Meta:
            database = db
            table_name = "budget_lease"
            indexes = ((("holder", "scope", "name", "window"), True), (("expires_at",), False))

    return [Team, BudgetSpend, BudgetLease]


def up(migrator, db):
    db.create_tables(_tables(db))
    migrate(
        migrator.add_column("client_key", "team", CharField(max_length=64, null=True)),
        migrator.add_column("client_key", "budget", BigIntegerField(null=True)),
        migrator.add_column("client_key", "period", CharField(max_length=8, null=True)),
        migrator.add_column("daily_usage", "team", CharField(max_length=64, default="-")),
        migrator.drop_index("daily_usage", "dailyusage_key_name_model_day"),
        migrator.add_index("daily_usage", ("key_name", "model", "day", "team"), True),
    )


def down(migrator, db):
    migrate(
        migrator.drop_index("daily_usage", "daily_usage_key_name_model_day_team"),
        migrator.drop_column("daily_usage", "team"),
        migrator.drop_column("client_key", "period"),
        migrator.drop_column("client_key", "budget"),
        migrator.drop_column("client_key", "team"),
    )
    # Under the name 0003 gave it, which up() drops.
    db.execute_sql(
        "CREATE UNIQUE INDEX dailyusage_key_name_model_day ON daily_usage (key_name, model, day)"
    )
    db.drop_tables(_tables(db))
