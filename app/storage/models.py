"""peewee models. The schema itself is owned by migrations/."""

import datetime
import json

from peewee import (
    BigAutoField,
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

from app.storage.db import database


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class JSONField(TextField):
    """JSON kept as text: the same column type on SQLite and PostgreSQL."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    # Bound to the proxy, so create_app() can point every model at the
    # database its settings name.
    class Meta:
        database = database


class RemoteModel(BaseModel):
    name = CharField(max_length=255, unique=True)
    remote_model = CharField(max_length=255)
    remote_host = CharField(max_length=2048)
    remote_type = CharField(max_length=16)
    # Fernet token (app/crypto.py); the plaintext key never reaches a column.
    api_key = TextField(null=True)
    system = TextField(null=True)
    parameters = JSONField(default=dict)
    parent_model = CharField(max_length=255, null=True)
    # What clients size prompts and features by (/api/show); None: the default.
    context_length = IntegerField(null=True)
    capabilities = JSONField(null=True)
    # Local model names tried in order when this model's remote fails.
    fallbacks = JSONField(null=True)
    fallback_on_auth_errors = BooleanField(default=False)
    # pico-units per token (app/spend/prices.py); None: the model has no price.
    price_input = BigIntegerField(null=True)
    price_output = BigIntegerField(null=True)
    price_cached_input = BigIntegerField(null=True)
    # Governed request fields the remote may receive (app/chat/forwarding.py);
    # None: none of them.
    forward = JSONField(null=True)
    # The most choices (`n`) a request may ask for; None: 1.
    max_n = IntegerField(null=True)
    # Whether the remote takes reasoning_effort "none" (app/remotes/openai.py);
    # None: it does, False: "none" is dropped.
    reasoning_none = BooleanField(null=True)
    digest = CharField(max_length=80)
    created_at = DateTimeField(default=utcnow)
    modified_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "remote_model"


class StoredResponse(BaseModel):
    """A Responses API response kept for previous_response_id and GET /v1/responses.

    A row holds its own turn only, linked to the turn before it (parent_id):
    a conversation of N turns takes N rows of one turn each, not N copies of
    a growing history (which grew as N squared). app/responses_store.py
    reads a conversation back with one recursive query up the links.
    """

    id = CharField(max_length=64, primary_key=True)
    model = CharField(max_length=255)
    # As the client sent it (the response object echoes it too).
    previous_response_id = CharField(max_length=64, null=True)
    # The stored turn this one continues; None: `messages` starts the
    # conversation (a first turn, or one whose previous response was gone
    # when it was stored or migrated).
    parent_id = CharField(max_length=64, null=True, index=True)
    created_at = DateTimeField(default=utcnow, index=True)
    # This request's own input items: what /input_items lists.
    input_items = JSONField()
    # This turn as chat messages: its input, then its answer (instructions
    # are never carried over). None when its input items and its response's
    # output items convert back to exactly these: most turns, whose input is
    # then stored once instead of twice.
    messages = JSONField(null=True)
    response = JSONField()
    # The client key that created it ("admin", or "-" with auth off): other
    # client keys neither see nor continue it.
    owner = CharField(max_length=64, null=True, index=True)
    # DELETEd: gone from every lookup, but its turn stays while a live
    # response continues the conversation (they still need it), as a
    # tombstone that goes with the last of them.
    deleted = BooleanField(default=False)

    class Meta:
        table_name = "stored_response"


class ResponseItem(BaseModel):
    """Which stored response holds an output item: what `item_reference`
    input items are resolved through."""

    item_id = CharField(max_length=64, primary_key=True)
    response_id = CharField(max_length=64, index=True)

    class Meta:
        table_name = "response_item"


class ClientKey(BaseModel):
    """A key the admin hands to a client. Only its SHA-256 is kept: keys are
    random and long, so a fast hash is safe and a lookup costs nothing."""

    name = CharField(max_length=64, unique=True)
    key_hash = CharField(max_length=64, unique=True)
    # Normalised model names (name:tag) the key may use; null: every model.
    models = JSONField(null=True)
    rpm = IntegerField(null=True)
    tpm = IntegerField(null=True)
    expires_at = DateTimeField(null=True)
    revoked = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)
    team = CharField(max_length=64, null=True)  # a Team's name
    budget = BigIntegerField(null=True)  # pico-units per `period` (app/spend/)
    period = CharField(max_length=8, null=True)  # day, month or total
    # Payload capture for this key's requests: off, errors or all; None:
    # RELAY_CAPTURE decides (app/observability/capture.py).
    capture = CharField(max_length=8, null=True)

    class Meta:
        table_name = "client_key"


class Team(BaseModel):
    """Keys that share models, limits and a budget."""

    name = CharField(max_length=64, unique=True)
    # Normalised model names its keys may use (with their own lists); null: every model.
    models = JSONField(null=True)
    rpm = IntegerField(null=True)
    tpm = IntegerField(null=True)
    budget = BigIntegerField(null=True)
    period = CharField(max_length=8, null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "team"


class RateBucket(BaseModel):
    """A token bucket shared by every worker and host: `level` tokens as of
    `updated_at` (Unix seconds), refilled at the key's rate."""

    key_name = CharField(max_length=64)
    kind = CharField(max_length=8)  # "rpm" or "tpm"
    level = DoubleField()
    updated_at = DoubleField()

    class Meta:
        table_name = "rate_bucket"
        primary_key = CompositeKey("key_name", "kind")


class BudgetSpend(BaseModel):
    """One budget's period window: what it spent (settled, pico-units) and
    what workers hold of it in leases; spent + held never passes the budget."""

    scope = CharField(max_length=8)  # "key" or "team"
    name = CharField(max_length=64)
    window = CharField(max_length=10)  # YYYY-MM-DD, YYYY-MM or "total"
    spent = BigIntegerField(default=0)
    held = BigIntegerField(default=0)
    alerted = IntegerField(default=0)  # the soft alert was given for this window

    class Meta:
        table_name = "budget_spend"
        primary_key = CompositeKey("scope", "name", "window")


class BudgetLease(BaseModel):
    """What one worker holds of a budget window; a lease not renewed by
    `expires_at` (Unix seconds) belonged to a dead worker and is released."""

    holder = CharField(max_length=80)
    scope = CharField(max_length=8)
    name = CharField(max_length=64)
    window = CharField(max_length=10)
    amount = BigIntegerField(default=0)
    expires_at = DoubleField()

    class Meta:
        table_name = "budget_lease"
        indexes = ((("holder", "scope", "name", "window"), True),)


class DailyUsage(BaseModel):
    """Usage per key, model, UTC day and team, added to in batches by every worker."""

    key_name = CharField(max_length=64)
    team = CharField(max_length=64, default="-")  # the key's team then; "-": none
    model = CharField(max_length=255)
    day = CharField(max_length=10)  # YYYY-MM-DD, UTC
    requests = IntegerField(default=0)
    input_tokens = BigIntegerField(default=0)
    output_tokens = BigIntegerField(default=0)
    errors = IntegerField(default=0)
    cost = BigIntegerField(default=0)  # pico-units (app/spend/money.py)
    unpriced = IntegerField(default=0)  # requests to a model without a price

    class Meta:
        table_name = "daily_usage"
        indexes = ((("key_name", "model", "day", "team"), True),)


class ChangeCounter(BaseModel):
    """Bumped with every change to what workers cache (`keys`): a worker
    reads one small row to learn whether its copy is stale."""

    name = CharField(max_length=32, primary_key=True)
    version = BigIntegerField(default=0)

    class Meta:
        table_name = "change_counter"


class RequestLog(BaseModel):
    """One request that named a model: who, what, how it went. Never its text."""

    id = BigAutoField()
    time = DateTimeField()  # naive UTC, when the request began
    request_id = CharField(max_length=128)
    trace_id = CharField(max_length=32, null=True)
    key_name = CharField(max_length=64)  # "admin", a key's name, "-" with auth off
    team = CharField(max_length=64)  # "-": none
    model = CharField(max_length=255)  # the local model the client asked for
    remote_model = CharField(max_length=255, null=True)
    surface = CharField(max_length=16)  # ollama, openai, responses, anthropic
    route = CharField(max_length=64)
    stream = BooleanField()
    status = IntegerField()
    error_code = CharField(max_length=64, null=True)
    latency_ms = IntegerField()
    ttfb_ms = IntegerField(null=True)
    input_tokens = IntegerField(null=True)
    output_tokens = IntegerField(null=True)
    cost = BigIntegerField(null=True)  # pico-units; None: the model has no price
    retries = IntegerField(default=0)
    fallback = CharField(max_length=255, null=True)  # the fallback that served, if one did
    captured = BooleanField(default=False)

    class Meta:
        table_name = "request_log"


class RequestCapture(BaseModel):
    """A request's and its answer's bodies, scrubbed and cut (payload capture)."""

    log_id = BigIntegerField(primary_key=True)  # the RequestLog row
    time = DateTimeField(index=True)
    request = TextField(null=True)
    answer = TextField(null=True)
    request_bytes = IntegerField(default=0)  # sizes before the cut
    answer_bytes = IntegerField(default=0)

    class Meta:
        table_name = "request_capture"
