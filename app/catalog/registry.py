"""The model registry: create, resolve, copy and delete remote models.
(How the APIs describe a model is app/describe.py.)"""

import hashlib
import json

from flask import current_app
from peewee import fn

from app.catalog.names import normalize_model_name
from app.chat import forwarding
from app.errors import BadRequest, ModelNotFound
from app.observability import telemetry
from app.remotes.policy import RemoteHostRefused
from app.spend import prices
from app.storage import changes
from app.storage.db import database
from app.storage.models import RemoteModel, utcnow

_REPLACED_FIELDS = [
    RemoteModel.remote_model,
    RemoteModel.remote_host,
    RemoteModel.remote_type,
    RemoteModel.api_key,
    RemoteModel.system,
    RemoteModel.parameters,
    RemoteModel.parent_model,
    RemoteModel.context_length,
    RemoteModel.capabilities,
    RemoteModel.fallbacks,
    RemoteModel.fallback_on_auth_errors,
    RemoteModel.price_input,
    RemoteModel.price_output,
    RemoteModel.price_cached_input,
    RemoteModel.forward,
    RemoteModel.max_n,
    RemoteModel.reasoning_none,
    RemoteModel.digest,
    RemoteModel.created_at,
    RemoteModel.modified_at,
]


def keyring():
    return current_app.extensions["relay.keyring"]


def host_policy():
    return current_app.extensions["relay.policy"]


# Every worker keeps all models in memory, so that a request reads no
# database to find its model. A model replaced or deleted on another host is
# seen within REFRESH_SECONDS; on this host at once (app.storage.changes.announce);
# a new name at once anywhere (a miss reads the database).
REFRESH_SECONDS = 1.0


def _all_by_name():
    return {model.name: model for model in RemoteModel.select()}


def model_cache(instance_path):
    """A new per-worker cache of the models (app.extensions["relay.models"])."""
    return changes.Snapshot("models", _all_by_name, REFRESH_SECONDS, instance_path)


def _find(normal):
    models = current_app.extensions["relay.models"].current()
    model = models.get(normal)
    if model is None:
        # Maybe created a moment ago elsewhere.
        model = RemoteModel.get_or_none(RemoteModel.name == normal)
        if model is not None:
            models[normal] = model
    return model


def _changed():
    """Record a change of the models (inside the writer's transaction)."""
    changes.bump("models")


def _announce():
    """Once the change is committed: this worker and this host see it at once."""
    changes.announce("models")
    current_app.extensions["relay.models"].expire()


def resolve(name):
    """The RemoteModel called `name` (with or without its tag), or 404."""
    normal = normalize_model_name(name)
    model = normal and _find(normal)
    if model is None:
        raise ModelNotFound(name)
    exchange = telemetry.current()
    if exchange is not None:
        exchange.model = model.name
    return model


def exists(name):
    normal = normalize_model_name(name)
    return bool(normal) and RemoteModel.select().where(RemoteModel.name == normal).exists()


def _digest(fields):
    # Identifies the configuration, like a manifest digest: anything that
    # changes where or how the model calls changes it, the API key included
    # (clients such as llm-ollama take one digest for one model, and would
    # send one model's calls on another's key). The key enters as its HMAC
    # under the instance secret: a plain hash of a secret is a way to test
    # guesses against it.
    # A copy (fields read back from a row) has the same digest as its source.
    left_out = ("api_key", "name", "digest", "created_at", "modified_at")
    public = {k: v for k, v in fields.items() if k not in left_out}
    if fields.get("api_key"):
        public["api_key_hmac"] = keyring().fingerprint(keyring().decrypt(fields["api_key"]))
    # Settings added later count only when set: a model that does not use
    # them keeps the digest it had before they existed.
    for later in ("forward", "max_n", "reasoning_none"):
        if public.get(later) is None:
            public.pop(later, None)
    text = json.dumps(public, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _upsert(fields):
    # One statement: a replaced model is never seen half-written or absent.
    fields = dict(fields, digest=_digest(fields), created_at=utcnow(), modified_at=utcnow())
    with database.atomic():
        (
            RemoteModel.insert(**fields)
            .on_conflict(conflict_target=[RemoteModel.name], preserve=_REPLACED_FIELDS)
            .execute()
        )
        # Read back before the commit: after it, a concurrent delete may
        # already have removed the row, and a create that did happen would
        # answer 500 (the soak's concurrent creates and deletes did).
        model = RemoteModel.get(RemoteModel.name == fields["name"])
        _changed()
    _announce()
    return model


def _given(spec, name, inherited):
    return spec[name] if spec.get(name) is not None else inherited


def _capabilities(names):
    # Kept in Ollama's order, once each, so that equal sets give equal digests.
    order = ("completion", "tools", "thinking", "vision", "embedding", "insert")
    return None if names is None else [n for n in order if n in set(names)]


def _forward(names):
    # Kept in forwarding's order, once each (equal sets, equal digests); an
    # empty list is the default, as no list is.
    names = [n for n in forwarding.GOVERNED if n in set(names or ())]
    return names or None


def _reasoning_none(value):
    # True is the default, stored as no value: equal settings, equal digests.
    return None if value is None or value else False


def create(spec, keep_api_key=False):
    """Create or replace a model from a loaded CreateSchema payload. With
    `keep_api_key`, a replaced model given no remote_api_key keeps its own
    (the console's edit form, which never shows the key back)."""
    name, source = spec["model"], spec.get("from_")
    if spec.get("remote_host"):
        if not source:
            raise BadRequest(
                "invalid request: from: the remote model id is required "
                'with remote_host (e.g. "from": "qwen-plus")',
                param="from",
            )
        try:
            host_policy().check(spec["remote_host"])
        except RemoteHostRefused as exc:
            raise BadRequest(str(exc), param="remote_host") from None
        key = spec.get("remote_api_key")
        fields = {
            "remote_model": source,
            "remote_host": spec["remote_host"].rstrip("/"),
            "remote_type": spec["remote_type"],
            "api_key": keyring().encrypt(key) if key else None,
            "system": spec.get("system"),
            "parameters": spec.get("parameters") or {},
            "parent_model": None,
            "context_length": spec.get("context_length"),
            "capabilities": _capabilities(spec.get("capabilities")),
            "fallbacks": spec.get("fallbacks"),
            "fallback_on_auth_errors": bool(spec.get("fallback_on_auth_errors")),
            **prices.columns(spec.get("price")),
            "forward": _forward(spec.get("forward")),
            "max_n": spec.get("max_n"),
            "reasoning_none": _reasoning_none(spec.get("reasoning_none")),
        }
    elif source:
        parent = RemoteModel.get_or_none(RemoteModel.name == normalize_model_name(source))
        if parent is None:
            raise BadRequest(
                f"model '{source}' not found: without remote_host, \"from\" must name an "
                f"existing model (this server runs no local weights)",
                param="from",
            )
        # A derived model copies its parent's remote, as an Ollama model
        # built FROM another copies its layers.
        fields = {
            "remote_model": parent.remote_model,
            "remote_host": parent.remote_host,
            "remote_type": parent.remote_type,
            "api_key": parent.api_key,
            "system": spec["system"] if spec.get("system") is not None else parent.system,
            "parameters": {**parent.parameters, **(spec.get("parameters") or {})},
            "parent_model": parent.name,
            "context_length": _given(spec, "context_length", parent.context_length),
            "capabilities": _capabilities(_given(spec, "capabilities", parent.capabilities)),
            # Fallbacks stand for the remote, which the derived model shares.
            "fallbacks": _given(spec, "fallbacks", parent.fallbacks),
            "fallback_on_auth_errors": _given(
                spec, "fallback_on_auth_errors", parent.fallback_on_auth_errors
            ),
            # A derived model costs what its parent costs, unless priced itself.
            **prices.columns(_given(spec, "price", prices.of(parent))),
            # What the provider may store or bill is the remote's, which it shares.
            "forward": _forward(_given(spec, "forward", parent.forward)),
            "max_n": _given(spec, "max_n", parent.max_n),
            # Whether "none" is taken is the remote's, which it shares.
            "reasoning_none": _reasoning_none(
                _given(spec, "reasoning_none", parent.reasoning_none)
            ),
        }
    else:
        raise BadRequest(
            'invalid request: remote_host: required (or "from" naming an '
            "existing model); this server runs no local weights",
            param="remote_host",
        )
    name = normalize_model_name(name)
    if keep_api_key and spec.get("remote_host") and not spec.get("remote_api_key"):
        before = RemoteModel.get_or_none(RemoteModel.name == name)
        fields["api_key"] = before.api_key if before is not None else None
    if fields["price_input"] is None and current_app.config["RELAY_REQUIRE_PRICES"]:
        raise BadRequest(
            'invalid request: price: required (RELAY_REQUIRE_PRICES is set), e.g. "price": '
            '{"input": 0.40, "output": 1.60} per million tokens',
            param="price",
        )
    fields["fallbacks"] = _checked_fallbacks(name, fields["fallbacks"])
    return _upsert(dict(fields, name=name))


def _checked_fallbacks(name, fallbacks):
    """Normalised fallback names; 400 if one does not exist or they would loop."""
    if not fallbacks:
        return None
    names = list(dict.fromkeys(normalize_model_name(f) for f in fallbacks))
    edges = {
        row.name: row.fallbacks or []
        for row in RemoteModel.select(RemoteModel.name, RemoteModel.fallbacks)
    }
    for fallback in names:
        if fallback != name and fallback not in edges:
            raise BadRequest(
                f"invalid request: fallbacks: model '{fallback}' not found", param="fallbacks"
            )
    edges[name] = names

    def path_back(start, seen):
        # Depth-first from `start`; the path that leads back to `name`, if any.
        for following in edges.get(start, []):
            if following == name:
                return [start, name]
            if following not in seen:
                seen.add(following)
                rest = path_back(following, seen)
                if rest:
                    return [start] + rest
        return None

    loop = path_back(name, {name})
    if loop:
        raise BadRequest(
            f"invalid request: fallbacks: they would loop ({' -> '.join(loop)})", param="fallbacks"
        )
    return names


def fallback_chain(model, seen=None):
    """`model`, then its fallbacks and theirs, depth first, each once, looked
    up only when reached (the happy path costs nothing); models deleted
    since are skipped."""
    seen = set() if seen is None else seen
    if model.name in seen:
        return
    seen.add(model.name)
    yield model
    for name in model.fallbacks or []:
        following = None if name in seen else _find(name)
        if following is not None:
            yield from fallback_chain(following, seen)


def set_prices(new_prices):
    """Reprice models from {name: Price}, all or none (a name not found: 400).
    Requests already under way cost what they cost when they started."""
    names = {name: normalize_model_name(name) for name in new_prices}
    with database.atomic():
        for given, normal in names.items():
            if not normal or not RemoteModel.select().where(RemoteModel.name == normal).exists():
                raise ModelNotFound(given)
            columns = prices.columns(new_prices[given])
            row = RemoteModel.get(RemoteModel.name == normal)
            stamps = ("digest", "created_at", "modified_at")
            fields = {
                f.name: getattr(row, f.name) for f in _REPLACED_FIELDS if f.name not in stamps
            }
            fields.update(columns)
            RemoteModel.update(**columns, digest=_digest(fields), modified_at=utcnow()).where(
                RemoteModel.name == normal
            ).execute()
        _changed()
    _announce()
    return sorted(names.values())


def copy(source, destination):
    original = resolve(source)
    fields = {field.name: getattr(original, field.name) for field in _REPLACED_FIELDS}
    return _upsert(dict(fields, name=normalize_model_name(destination)))


def delete(name):
    normal = normalize_model_name(name)
    with database.atomic():
        if not normal or not RemoteModel.delete().where(RemoteModel.name == normal).execute():
            raise ModelNotFound(name)
        _changed()
    _announce()


def all_models():
    return list(RemoteModel.select().order_by(fn.LOWER(RemoteModel.name)))
