"""The request log (one row per request that named a model), captured
payloads (request and answer bodies, scrubbed, for debugging), and each
key's capture setting.

Rows are read newest first, filtered by key, team, model, status or latency:
each filter has an index that ends in (time, id), so a page is one index
range read in order, at any size of the table (keyset pagination; no
OFFSET, no COUNT). Latency has its own index: a filter on a rare high
latency reads those rows, not the table.
"""

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    IntegerField,
    Model,
    TextField,
)
from playhouse.migrate import migrate


def _tables(db):
    # Frozen copies of the tables as this migration creates them.
    class RequestLog(Model):
        id = BigAutoField()
        time = DateTimeField()
        request_id = CharField(max_length=128)
        trace_id = CharField(max_length=32, null=True)
        key_name = CharField(max_length=64)
        team = CharField(max_length=64)
        model = CharField(max_length=255)
        remote_model = CharField(max_length=255, null=True)
        surface = CharField(max_length=16)
        route = CharField(max_length=64)
        stream = BooleanField()
        status = IntegerField()
        error_code = CharField(max_length=64, null=True)
        latency_ms = IntegerField()
        ttfb_ms = IntegerField(null=True)
        input_tokens = IntegerField(null=True)
        output_tokens = IntegerField(null=True)
        cost = BigIntegerField(null=True)
        retries = IntegerField(default=0)
        fallback = CharField(max_length=255, null=True)
        captured = BooleanField(default=False)

        class Meta:
            database = db
            table_name = "request_log"
            indexes = (
                (("time", "id"), False),
                (("key_name", "time", "id"), False),
                (("team", "time", "id"), False),
                (("model", "time", "id"), False),
                (("status", "time", "id"), False),
                (("latency_ms",), False),
                (("request_id",), False),
            )

    class RequestCapture(Model):
        log_id = BigIntegerField(primary_key=True)
        time = DateTimeField(index=True)
        request = TextField(null=True)
        answer = TextField(null=True)
        request_bytes = IntegerField(default=0)
        answer_bytes = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "request_capture"

    return [RequestLog, RequestCapture]


def up(migrator, db):
    db.create_tables(_tables(db))
    migrate(migrator.add_column("client_key", "capture", CharField(max_length=8, null=True)))


def down(migrator, db):
    migrate(migrator.drop_column("client_key", "capture"))
    db.drop_tables(_tables(db))
