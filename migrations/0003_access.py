"""Client keys, shared rate-limit buckets, daily usage, change counters, and
the owner of each stored response."""

import datetime

from peewee import (
    BigIntegerField,
    BooleanField,
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
    # Frozen copies of the tables as this migration creates them.
    class ClientKey(Model):
        name = CharField(max_length=64, unique=True)
        key_hash = CharField(max_length=64, unique=True)
        models = TextField(null=True)
        rpm = IntegerField(null=True)
        tpm = IntegerField(null=True)
        expires_at = DateTimeField(null=True)
        revoked = BooleanField(default=False)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        last_used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "client_key"

    class RateBucket(Model):
        key_name = CharField(max_length=64)
        kind = CharField(max_length=8)
        level = DoubleField()
        updated_at = DoubleField()

        class Meta:
            database = db
            table_name = "rate_bucket"
            primary_key = CompositeKey("key_name", "kind")

    class DailyUsage(Model):
        key_name = CharField(max_length=64)
        model = CharField(max_length=255)
        day = CharField(max_length=10)
        requests = IntegerField(default=0)
        input_tokens = BigIntegerField(default=0)
        output_tokens = BigIntegerField(default=0)
        errors = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "daily_usage"
            indexes = ((("key_name", "model", "day"), True),)

    class ChangeCounter(Model):
        name = CharField(max_length=32, primary_key=True)
        version = BigIntegerField(default=0)

        class Meta:
            database = db
            table_name = "change_counter"

    return [ClientKey, RateBucket, DailyUsage, ChangeCounter]


def up(migrator, db):
    tables = _tables(db)
    db.create_tables(tables)
    tables[-1].insert(name="keys", version=0).execute()
    migrate(
        migrator.add_column("stored_response", "owner", CharField(max_length=64, null=True)),
        migrator.add_index("stored_response", ("owner",)),
    )


def down(migrator, db):
    migrate(
        migrator.drop_index("stored_response", "stored_response_owner"),
        migrator.drop_column("stored_response", "owner"),
    )
    db.drop_tables(_tables(db))
