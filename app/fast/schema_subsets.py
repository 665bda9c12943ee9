"""Fast path: a marshmallow schema limited to the fields a body has.

marshmallow visits every declared field on every load, given or not: most
of ChatCompletionSchema's fields for a chat request that has three, a
measurable share of the request's CPU (ops/bench/ab.py). A copy limited
(only=) to the fields a body has, and those that act when missing (required
ones, load_default), loads the same result with the same errors in the same
order: absent fields add nothing to either. Not for a schema with a pre_load
hook (it may rename or add fields), nor for an instance made with settings
of its own.

It reads marshmallow's private `_hooks` and `_declared_fields`: gated on the
marshmallow it was tested with. Otherwise, or switched off, `for_body`
returns the schema it was given.
"""

import functools
from typing import Any

from marshmallow import RAISE, Schema, missing

from app import fast

TESTED_WITH = {"python": "3.11", "marshmallow": "4.4.0"}
SUPPORTED = fast.tested(TESTED_WITH) and all(
    hasattr(Schema, name) for name in ("_hooks", "_declared_fields")
)
_PRE_LOAD = "pre_load"  # marshmallow.decorators.PRE_LOAD

_LIMITED: dict[tuple[type[Schema], tuple[str, ...]], Schema] = {}


def active() -> bool:
    """Whether schemas are limited (RELAY_FAST_PATHS, as create_app set it)."""
    return SUPPORTED and fast.wanted()


@functools.lru_cache(maxsize=None)
def always(cls: type[Schema]) -> tuple[str, ...] | None:
    """Names of `cls`'s fields that act when missing, in declared order;
    None when `cls` may not be limited."""
    hooks: Any = getattr(cls, "_hooks")
    if hooks.get(_PRE_LOAD):
        return None
    declared: dict[str, Any] = getattr(cls, "_declared_fields")
    return tuple(
        name
        for name, field in declared.items()
        if field.required or field.load_default is not missing
    )


def for_body(schema: Schema, data: Any) -> Schema:
    """What loads `data` for `schema`: a limited copy when this path is
    active, else `schema` itself."""
    return limited(schema, data) if active() else schema


def limited(schema: Schema, data: Any) -> Schema:
    """`schema`, or a copy of it limited to what loading `data` needs."""
    if not SUPPORTED:
        return schema
    cls = type(schema)
    needed = always(cls)
    if needed is None or type(data) is not dict or not _plain(schema):
        return schema
    given = tuple(
        name
        for name, field in schema.load_fields.items()
        if (field.data_key or name) in data or name in needed
    )
    limited = _LIMITED.get((cls, given))
    if limited is None:
        if len(_LIMITED) >= 1024:  # bodies choose the keys: bound the copies
            _LIMITED.clear()
        limited = _LIMITED[cls, given] = cls(only=given)
    return limited


def _plain(schema: Schema) -> bool:
    """Made as cls() is: no only, exclude, partial or other settings of its own."""
    return (
        schema.only is None
        and not schema.exclude
        and not schema.partial
        and not schema.many
        and not schema.load_only
        and not schema.dump_only
        and schema.unknown == getattr(schema.Meta, "unknown", RAISE)
    )
