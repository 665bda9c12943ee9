"""Client keys: created by the admin, shown once, kept only as a SHA-256.

A key is `orl-` and 43 random url-safe characters (256 bits): nobody can
guess one, so a fast hash is as good as a slow one and a lookup is one dict
access. Every worker keeps all keys in a KeyCache that it checks against the
`keys` change counter at most every REFRESH_SECONDS: a key created, revoked
or expired anywhere is seen everywhere within that bound.
"""

import datetime
import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from app.access import audit
from app.access.teams import TeamRecord, budget_columns, budget_of
from app.catalog.names import normalize_model_name
from app.errors import RelayError
from app.spend import money
from app.spend.budgets import Budget
from app.storage import changes
from app.storage.db import write_transaction
from app.storage.models import ClientKey, Team, utcnow

PREFIX = "orl-"
REFRESH_SECONDS = 1.0
# An unknown key may be one created a moment ago on another worker: look it
# up at once (one indexed read), but no more than this many times a second
# per worker, so that a flood of bogus keys cannot turn into database reads.
UNKNOWN_LOOKUPS_PER_SECOND = 20
# A key's name, whole: \Z, not $, which also matches before a final newline
# (a "zed\n" beside "zed" would look the same in audit lines and metrics).
# The OpenAPI document shows it (with $) on /api/keys' `name`.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z"
_NAME = re.compile(NAME_PATTERN)
NAME_RULE = (
    "name must be 1-64 letters, digits, '.', '_', '@' or '-', starting "
    "with a letter or digit (and not 'admin')"
)
# Names the relay itself uses for callers without a client key.
RESERVED_NAMES = ("admin", "-")


class KeyProblem(RelayError):
    """A key cannot be created or revoked as asked; `param` names the field."""

    def __init__(self, message, field=None, status=400):
        super().__init__(message, status=status, param=field)


def digest(secret):
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    """What a worker needs to know of a key on every request."""

    # Stable and unique per key, even when a new key takes a revoked key's
    # name (row ids can be reused on SQLite): a prefix of its hash.
    identity: str
    name: str
    models: frozenset  # None: every model
    rpm: int
    tpm: int
    expires_at: datetime.datetime  # naive UTC, or None
    revoked: bool
    team: TeamRecord = None
    budget: Budget = None
    capture: str = None  # off, errors, all; None: RELAY_CAPTURE decides

    @property
    def team_name(self):
        return "-" if self.team is None else self.team.name

    def expired(self, now=None):
        return self.expires_at is not None and (now or utcnow()) >= self.expires_at

    def may_use(self, model_name):
        own = self.models is None or model_name in self.models
        return own and (self.team is None or self.team.may_use(model_name))

    @classmethod
    def of(cls, row, team=None):
        return cls(
            row.key_hash[:24],
            row.name,
            None if row.models is None else frozenset(row.models),
            row.rpm,
            row.tpm,
            row.expires_at,
            row.revoked,
            team,
            budget_of("key", row),
            row.capture,
        )


def validate_name(name):
    if not valid_name(name):
        raise KeyProblem(NAME_RULE, "name")


def valid_name(name):
    return isinstance(name, str) and bool(_NAME.fullmatch(name)) and name not in RESERVED_NAMES


def expiry(value, now=None):
    """`YYYY-MM-DD` (the key works through that UTC day) or an ISO date-time,
    as a naive UTC datetime; None for no expiry."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            moment = datetime.datetime.fromisoformat(text) + datetime.timedelta(days=1)
        else:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise KeyProblem(
            "expires must be a date YYYY-MM-DD (the key works through that "
            "UTC day) or an ISO 8601 date-time",
            "expires",
        ) from None
    if moment <= (now or utcnow()):
        raise KeyProblem(f"expires {text!r} is in the past", "expires")
    return moment


def _checked_team(name):
    if name is not None and Team.get_or_none(Team.name == name) is None:
        raise KeyProblem(f"team '{name}' not found", "team", status=404)
    return name


def create(name, models=None, rpm=None, tpm=None, expires=None, team=None, budget=None):
    """Create a key; returns (row, secret). The secret exists only in this
    return value. A revoked key's name may be given to a new key."""
    validate_name(name)
    expires_at = expiry(expires)
    secret = PREFIX + secrets.token_urlsafe(32)
    with write_transaction():
        _checked_team(team)
        existing = ClientKey.get_or_none(ClientKey.name == name)
        if existing is not None and not existing.revoked:
            raise KeyProblem(
                f"a key named '{name}' exists: revoke it first, or choose another name",
                "name",
                status=409,
            )
        if existing is not None:
            existing.delete_instance()
        row = ClientKey.create(
            name=name,
            key_hash=digest(secret),
            models=models,
            rpm=rpm,
            tpm=tpm,
            expires_at=expires_at,
            created_at=utcnow(),
            team=team,
            **(budget or {}),
        )
        changes.bump("keys")
    changes.announce("keys")
    return row, secret


def issue(spec, actor, via):
    """Create a key from a loaded CreateKeySchema payload and audit it:
    (description, secret). The admin's HTTP API and the CLI both call it."""
    models = spec["models"]
    if models is not None:
        models = sorted({normalize_model_name(m) for m in models})
    row, secret = create(
        spec["name"],
        models,
        spec["rpm"],
        spec["tpm"],
        spec["expires"],
        spec.get("team"),
        budget_columns(spec),
    )
    audit.record(
        actor,
        "key.create",
        row.name,
        via=via,
        models=models,
        rpm=row.rpm,
        tpm=row.tpm,
        team=row.team,
    )
    return describe(row), secret


# Fields `update` may change, as the API names them.
UPDATABLE = ("models", "rpm", "tpm", "expires", "team", "budget", "period", "capture")


def update(spec, actor, via):
    """Change the fields a loaded UpdateKeySchema payload names (null clears
    one); the key's description. A revoked key cannot be changed."""
    given = {field: spec[field] for field in UPDATABLE if field in spec}
    columns = dict(given)
    if "models" in columns and columns["models"] is not None:
        columns["models"] = sorted({normalize_model_name(m) for m in columns["models"]})
    if "expires" in columns:
        columns["expires_at"] = expiry(columns.pop("expires"))
    with write_transaction():
        row = ClientKey.get_or_none((ClientKey.name == spec["name"]) & (ClientKey.revoked == False))  # noqa: E712
        if row is None:
            raise KeyProblem(f"key '{spec['name']}' not found (or revoked)", "name", status=404)
        _checked_team(columns.get("team"))
        capture_was = row.capture
        columns.pop("budget", None), columns.pop("period", None)
        columns.update(budget_columns(spec, row))
        if columns:
            ClientKey.update(**columns).where(ClientKey.id == row.id).execute()
            changes.bump("keys")
        row = ClientKey.get_by_id(row.id)
    changes.announce("keys")
    shown = describe(row)
    audit.record(actor, "key.update", row.name, via=via, **{f: shown[f] for f in given})
    if "capture" in given:
        # Its own line: whose payloads are kept is what an auditor looks for.
        audit.record(actor, "key.capture", row.name, via=via, capture=row.capture, was=capture_was)
    return describe(row)


def revoke(name):
    with write_transaction():
        updated = (
            ClientKey.update(revoked=True)
            .where((ClientKey.name == name) & (ClientKey.revoked == False))  # noqa: E712
            .execute()
        )
        if not updated:
            exists = ClientKey.get_or_none(ClientKey.name == name)
            # A name that no key may have is a bad request. (One that exists
            # anyway, made before names were checked whole, can be revoked.)
            if exists is None and not valid_name(name):
                raise KeyProblem(NAME_RULE, "name")
            raise KeyProblem(
                f"key '{name}' is already revoked" if exists else f"key '{name}' not found",
                "name",
                status=409 if exists else 404,
            )
        changes.bump("keys")
    changes.announce("keys")


def signed_in(name, identity):
    """The KeyRecord of key `name` while it is still the key `identity` (a
    new key given a revoked key's name is not) and neither revoked nor
    expired; None otherwise. Read from the database, so that a console
    session of a key revoked on any host ends at its next page."""
    row = ClientKey.get_or_none(ClientKey.name == name)
    if row is None or row.revoked or row.key_hash[: len(identity)] != identity:
        return None
    team = Team.get_or_none(Team.name == row.team) if row.team else None
    record = KeyRecord.of(row, team and TeamRecord.of(team))
    return None if record.expired() else record


def page(after=None, limit=50):
    """Up to `limit` keys by name, the first after `after`, and whether more follow."""
    query = ClientKey.select().order_by(ClientKey.name)
    if after:
        query = query.where(ClientKey.name > after)
    rows = list(query.limit(limit + 1))
    return rows[:limit], len(rows) > limit


def all_keys():
    return list(ClientKey.select().order_by(ClientKey.name))


def _timestamp(value):
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(row):
    """A key as the admin sees it: everything but the secret and its hash."""
    return {
        "name": row.name,
        "models": row.models,
        "rpm": row.rpm,
        "tpm": row.tpm,
        "expires": _timestamp(row.expires_at),
        "created_at": _timestamp(row.created_at),
        "last_used_at": _timestamp(row.last_used_at),
        "revoked": row.revoked,
        "team": row.team,
        "budget": None if row.budget is None else money.exact(row.budget),
        "period": row.period,
        "capture": row.capture,
    }


class KeyCache:
    """Every key of the database by hash, as of at most REFRESH_SECONDS ago."""

    def __init__(self, instance_path, refresh_seconds=REFRESH_SECONDS):
        self._keys = changes.Snapshot("keys", _all_keys, refresh_seconds, instance_path)
        # A token bucket for lookups of unknown keys.
        self._lookups = float(UNKNOWN_LOOKUPS_PER_SECOND)
        self._lookups_at = 0.0

    def find(self, hashed):
        """The KeyRecord whose secret's digest() is `hashed` (revoked and
        expired ones included), or None."""
        by_hash = self._keys.current()
        key = by_hash.get(hashed)
        if key is None and self._may_look_up(time.monotonic()):
            row = ClientKey.get_or_none(ClientKey.key_hash == hashed)
            if row is not None:
                team = row.team and Team.get_or_none(Team.name == row.team)
                key = by_hash[hashed] = KeyRecord.of(row, team and TeamRecord.of(team))
        return key

    def _may_look_up(self, now):
        rate = UNKNOWN_LOOKUPS_PER_SECOND
        self._lookups = min(rate, self._lookups + (now - self._lookups_at) * rate)
        self._lookups_at = now
        if self._lookups < 1:
            return False
        self._lookups -= 1
        return True

    def expire(self):
        """Check the database on the next lookup (this worker just changed a key)."""
        self._keys.expire()


def _all_keys():
    teams = {row.name: TeamRecord.of(row) for row in Team.select()}
    return {row.key_hash: KeyRecord.of(row, teams.get(row.team)) for row in ClientKey.select()}
