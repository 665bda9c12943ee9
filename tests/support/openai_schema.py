"""Validate relay output against OpenAI's own OpenAPI document.

The document (``/work/shared/specs/openai-openapi.json``, OpenAPI 3.1) still
uses a few OpenAPI 3.0 idioms that plain JSON Schema does not understand, so
before validating we rewrite ``components/schemas`` once:

* ``nullable: true`` becomes a null type.  Plain typed schemas get
  ``type: [T, "null"]`` (and ``null`` is added to any ``enum``); schemas built
  from ``$ref``/``allOf``/``anyOf``/``oneOf``/``const`` are wrapped as
  ``anyOf: [{type: null}, <schema>]``.  The document also spells
  "nullable $ref" as ``allOf: [{$ref: X}, {nullable: true}]``; such a bare
  ``{nullable: true}`` member makes the *enclosing* schema nullable.
  ``nullable: false`` is dropped.
* every ``oneOf`` becomes ``anyOf`` (the unions overlap, e.g. several item
  types accept the same object shape).
* 2019-09 `$recursiveRef: "#"` (CompoundFilter) becomes a plain `$ref` to the
  component itself (2020-12 would silently ignore it).
* OpenAPI 3.0 boolean ``exclusiveMinimum/Maximum: true`` becomes the JSON
  Schema 2020-12 numeric form (otherwise Python compares against ``True == 1``).

Validation uses ``Draft202012Validator`` (OpenAPI 3.1's schema dialect is
2020-12) with a ``referencing`` registry in which the fixed document lives at
``DOC_URI``, so ``$ref: '#/components/schemas/...'`` resolves.  The document is
loaded and fixed lazily, once per process; validators are cached per component.

Public API: ``validate``, ``validate_stream_event``, ``stream_event_types``,
``stream_event_component``, ``required_fields``, ``component_names`` and the
component-name constants below.
"""

from __future__ import annotations

import copy
import functools
import heapq
import json
import os
import threading

from jsonschema import Draft202012Validator
from jsonschema.exceptions import relevance
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_PATH = os.environ.get("OPENAI_OPENAPI_SPEC", "/work/shared/specs/openai-openapi.json")
DOC_URI = "urn:openai-openapi"

# --- component names (as used by the document's `paths` section) -----------
# POST /chat/completions 200 application/json
CHAT_COMPLETION = "CreateChatCompletionResponse"
# POST /chat/completions 200 text/event-stream
CHAT_COMPLETION_CHUNK = "CreateChatCompletionStreamResponse"
# POST /responses, GET /responses/{response_id}
RESPONSE = "Response"
# POST /responses 200 text/event-stream (union of all stream events)
RESPONSE_STREAM_EVENT = "ResponseStreamEvent"
# GET /responses/{response_id}/input_items
RESPONSE_INPUT_ITEMS = "ResponseItemList"
# GET /models, GET /models/{model}
MODELS_LIST = "ListModelsResponse"
MODEL = "Model"
# POST /embeddings
EMBEDDINGS = "CreateEmbeddingResponse"
# Error body (`{"error": {...}}`); `Error` is the inner object, and is also
# what DELETE /responses/{response_id} documents for its 404.
ERROR_RESPONSE = "ErrorResponse"
ERROR = "Error"
# DELETE /responses/{response_id}: the document gives NO schema for the 200
# (only `description: OK`; its x-oaiMeta example is
# {"id": ..., "object": "response", "deleted": true}).
RESPONSE_DELETED = None
# For completeness: DELETE /models/{model} and DELETE /chat/completions/{id}.
MODEL_DELETED = "DeleteModelResponse"
CHAT_COMPLETION_DELETED = "ChatCompletionDeleted"

# Item / part components that tests commonly want to check on their own.
OUTPUT_MESSAGE = "OutputMessage"
OUTPUT_TEXT = "OutputTextContent"
REASONING_ITEM = "ReasoningItem"
FUNCTION_TOOL_CALL = "FunctionToolCall"
RESPONSE_USAGE = "ResponseUsage"

COMPONENT_NAMES = {
    "chat_completion": CHAT_COMPLETION,
    "chat_completion_chunk": CHAT_COMPLETION_CHUNK,
    "response": RESPONSE,
    "response_stream_event": RESPONSE_STREAM_EVENT,
    "response_input_items": RESPONSE_INPUT_ITEMS,
    "models_list": MODELS_LIST,
    "model": MODEL,
    "embeddings": EMBEDDINGS,
    "error_response": ERROR_RESPONSE,
    "error": ERROR,
    "model_deleted": MODEL_DELETED,
    "chat_completion_deleted": CHAT_COMPLETION_DELETED,
    "output_message": OUTPUT_MESSAGE,
    "output_text": OUTPUT_TEXT,
    "reasoning_item": REASONING_ITEM,
    "function_tool_call": FUNCTION_TOOL_CALL,
    "response_usage": RESPONSE_USAGE,
}

# Where each name comes from in the document: (path, method, status, media type).
PATH_SOURCES = {
    CHAT_COMPLETION: ("/chat/completions", "post", "200", "application/json"),
    CHAT_COMPLETION_CHUNK: ("/chat/completions", "post", "200", "text/event-stream"),
    RESPONSE: ("/responses/{response_id}", "get", "200", "application/json"),
    RESPONSE_STREAM_EVENT: ("/responses", "post", "200", "text/event-stream"),
    RESPONSE_INPUT_ITEMS: (
        "/responses/{response_id}/input_items",
        "get",
        "200",
        "application/json",
    ),
    MODELS_LIST: ("/models", "get", "200", "application/json"),
    MODEL: ("/models/{model}", "get", "200", "application/json"),
    EMBEDDINGS: ("/embeddings", "post", "200", "application/json"),
    ERROR: ("/responses/{response_id}", "delete", "404", "application/json"),
    MODEL_DELETED: ("/models/{model}", "delete", "200", "application/json"),
}

# Keywords whose values are not schemas (never rewrite inside them).
_NON_SCHEMA_KEYS = frozenset(
    {
        "enum",
        "const",
        "default",
        "example",
        "examples",
        "required",
        "description",
        "title",
        "discriminator",
        "format",
        "pattern",
        "x-oaiMeta",
        "xml",
        "externalDocs",
    }
)
# Keywords whose value is a map name -> schema.
_SCHEMA_MAP_KEYS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
# Keywords whose value is a list of schemas.
_SCHEMA_LIST_KEYS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
# Keywords that only annotate (a schema made only of these accepts anything).
_ANNOTATION_KEYS = frozenset(
    {
        "description",
        "title",
        "default",
        "example",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "externalDocs",
    }
)


def _is_annotation_only(schema):
    return all(k in _ANNOTATION_KEYS or k.startswith("x-") for k in schema)


def _fix(node, self_ref=None):
    """Return a JSON-Schema-2020-12 version of an OpenAPI schema node.

    `self_ref` is the `$ref` of the component being fixed; 2019-09 style
    ``$recursiveRef: "#"`` (used by CompoundFilter) is rewritten to it.
    """
    if isinstance(node, list):
        return [_fix(x, self_ref) for x in node]
    if not isinstance(node, dict):
        return node
    nullable = node.get("nullable") is True
    out = {}
    for key, value in node.items():
        if key == "nullable" or key == "$recursiveAnchor":
            continue
        if key == "$recursiveRef" and value == "#" and self_ref:
            out["$ref"] = self_ref
        elif key in _NON_SCHEMA_KEYS or key.startswith("x-"):
            out[key] = value
        elif key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {k: _fix(v, self_ref) for k, v in value.items()}
        elif key == "allOf" and isinstance(value, list):
            # allOf: [{$ref: X}, {nullable: true}] -> the enclosing schema is
            # nullable (checked on the raw members, before they are rewritten).
            kept = []
            for member in value:
                if isinstance(member, dict) and member.get("nullable") is True:
                    nullable = True
                    rest = {k: v for k, v in member.items() if k != "nullable"}
                    if _is_annotation_only(rest):
                        continue
                    member = rest
                kept.append(_fix(member, self_ref))
            if kept:
                out[key] = kept
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [_fix(v, self_ref) for v in value]
        elif isinstance(value, (dict, list)):
            out[key] = _fix(value, self_ref)  # items, additionalProperties, not, ...
        else:
            out[key] = value

    # oneOf -> anyOf (merge with an existing anyOf via allOf).
    if "oneOf" in out:
        one = out.pop("oneOf")
        if "anyOf" in out:
            out.setdefault("allOf", []).append({"anyOf": one})
        else:
            out["anyOf"] = one

    # OpenAPI 3.0 boolean exclusive bounds -> 2020-12 numeric bounds.
    for excl, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(excl), bool):
            if out[excl] and bound in out:
                out[excl] = out.pop(bound)
            else:
                del out[excl]

    if nullable:
        out = _make_nullable(out)
    return out


def _make_nullable(schema):
    composite = {"$ref", "allOf", "anyOf", "oneOf", "not", "const", "if"} & schema.keys()
    t = schema.get("type")
    if not composite and t is not None:
        schema = dict(schema)
        types = [t] if isinstance(t, str) else list(t)
        if "null" not in types:
            types.append("null")
        schema["type"] = types
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = list(schema["enum"]) + [None]
        return schema
    if not composite and "enum" not in schema:
        return schema  # no type constraint at all: null is already accepted
    # Wrap; keep annotations outside for readability.
    outer = {k: v for k, v in schema.items() if k in _ANNOTATION_KEYS or k.startswith("x-")}
    inner = {k: v for k, v in schema.items() if k not in outer}
    if "enum" in inner and None not in inner["enum"]:
        inner["enum"] = list(inner["enum"]) + [None]
    outer["anyOf"] = [{"type": "null"}, inner]
    return outer


def fix_document(doc):
    """Return a copy of the OpenAPI document with ``components.schemas`` fixed."""
    fixed = copy.copy(doc)
    fixed["components"] = dict(doc.get("components", {}))
    fixed["components"]["schemas"] = {
        name: _fix(schema, f"#/components/schemas/{name}")
        for name, schema in doc["components"]["schemas"].items()
    }
    return fixed


# --- lazy module-level state ------------------------------------------------
_lock = threading.Lock()
_state = {}


def _load():
    if "registry" in _state:
        return _state
    with _lock:
        if "registry" in _state:
            return _state
        with open(SPEC_PATH, encoding="utf-8") as fh:
            raw = json.load(fh)
        fixed = fix_document(raw)
        # Only the schemas are needed for validation; keep the resource small.
        resource_doc = {"components": {"schemas": fixed["components"]["schemas"]}}
        resource = DRAFT202012.create_resource(resource_doc)
        registry = Registry().with_resource(DOC_URI, resource).crawl()
        _state.update(raw=raw, schemas=fixed["components"]["schemas"], registry=registry)
    return _state


def raw_document():
    """The document exactly as published (cached)."""
    return _load()["raw"]


def fixed_schemas():
    """``components.schemas`` after the nullable/oneOf fixes (cached)."""
    return _load()["schemas"]


def component_names():
    """Component names the relay needs, verified to exist in the document."""
    schemas = _load()["schemas"]
    missing = sorted(n for n in COMPONENT_NAMES.values() if n not in schemas)
    if missing:
        raise AssertionError(f"components missing from {SPEC_PATH}: {missing}")
    return dict(COMPONENT_NAMES)


def path_component(path, method, status="200", media="application/json"):
    """Component name that ``paths[path][method]`` returns, or None if no schema."""
    op = raw_document()["paths"][path][method]
    content = op["responses"][status].get("content") or {}
    ref = (content.get(media) or {}).get("schema", {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


@functools.lru_cache(maxsize=None)
def _validator(component_name):
    state = _load()
    if component_name not in state["schemas"]:
        raise KeyError(f"no component schema named {component_name!r} in {SPEC_PATH}")
    schema = {"$ref": f"{DOC_URI}#/components/schemas/{component_name}"}
    return Draft202012Validator(schema, registry=state["registry"])


# --- error reporting ----------------------------------------------------------
def _excerpt(value, limit=160):
    try:
        text = json.dumps(value, default=repr)
    except Exception:  # pragma: no cover
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_path(path):
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _is_discriminator_miss(err, depth):
    """True if `err` says the branch's `type`/`object` tag doesn't match."""
    rel = list(err.absolute_path)[depth:]
    return len(rel) == 1 and rel[0] in ("type", "object") and err.validator in ("enum", "const")


def _narrow(error):
    """Pick the most useful leaf error.

    Like ``best_match``, but inside ``anyOf`` it first discards branches whose
    ``type``/``object`` tag (or JSON type) doesn't match the instance, so a
    broken ``output_text`` part is reported as such rather than as "not a
    reasoning_text".
    """
    while error.context:
        if error.validator in ("anyOf", "oneOf"):
            depth = len(error.absolute_path)
            branches = {}
            for sub in error.context:
                branches.setdefault(sub.relative_schema_path[0], []).append(sub)
            live = [
                errs
                for errs in branches.values()
                if not any(_is_discriminator_miss(e, depth) for e in errs)
                and not any(e.validator == "type" and len(e.absolute_path) == depth for e in errs)
            ]
            if len(live) == 1:
                error = max(live[0], key=relevance)
                continue
        smallest = heapq.nsmallest(2, error.context, key=relevance)
        if len(smallest) == 2 and relevance(smallest[0]) == relevance(smallest[1]):
            return error
        error = smallest[0]
    return error


def _format_error(error, component_name, n_errors):
    error = _narrow(error)
    schema_path = "/".join(str(p) for p in error.absolute_schema_path)
    lines = [
        f"instance does not match OpenAI schema {component_name!r} "
        f"({n_errors} top-level error{'s' if n_errors != 1 else ''})",
        f"  at:      {_json_path(error.absolute_path)}",
        f"  keyword: {error.validator} (schema path {schema_path})",
        f"  message: {_excerpt(error.message, 300)}",
        f"  value:   {_excerpt(error.instance)}",
    ]
    return "\n".join(lines)


def validate(instance, component_name):
    """Assert that `instance` is valid for ``#/components/schemas/<component_name>``."""
    errors = list(_validator(component_name).iter_errors(instance))
    if errors:
        raise AssertionError(_format_error(max(errors, key=relevance), component_name, len(errors)))


def is_valid(instance, component_name):
    return _validator(component_name).is_valid(instance)


# --- Responses streaming events -------------------------------------------------
def _ref_name(schema):
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref.startswith("#/components/schemas/") else None


def _type_values(schema):
    """Values of the `type` property's const/enum in an event schema."""
    tprop = (schema.get("properties") or {}).get("type") or {}
    if "const" in tprop:
        return [tprop["const"]]
    return [v for v in tprop.get("enum", []) if v is not None]


def _union_members(name, schemas, seen=None):
    """Component names reachable as members of a (possibly nested) union."""
    seen = set() if seen is None else seen
    if name in seen:
        return []
    seen.add(name)
    schema = schemas[name]
    members = []
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key, []):
            ref = _ref_name(branch)
            if ref is None:
                continue
            sub = schemas[ref]
            if ("anyOf" in sub or "oneOf" in sub) and not _type_values(sub):
                members.extend(_union_members(ref, schemas, seen))
            else:
                members.append(ref)
    return members


@functools.lru_cache(maxsize=None)
def _stream_event_map():
    schemas = raw_document()["components"]["schemas"]
    mapping = {}
    for name in _union_members(RESPONSE_STREAM_EVENT, schemas):
        schema = schemas[name]
        values = _type_values(schema)
        if not values:  # e.g. allOf composition: look in the parts
            for part in schema.get("allOf", []):
                values += _type_values(schemas[_ref_name(part)] if _ref_name(part) else part)
        for value in values:
            if value in mapping and mapping[value] != name:
                raise AssertionError(
                    f"event type {value!r} maps to both {mapping[value]} and {name}"
                )
            mapping[value] = name
    return mapping


def stream_event_types():
    """{event type string: component name} for every Responses stream event."""
    return dict(_stream_event_map())


def stream_event_component(event_type):
    try:
        return _stream_event_map()[event_type]
    except KeyError:
        raise AssertionError(
            f"unknown Responses stream event type {event_type!r} (not in {RESPONSE_STREAM_EVENT})"
        ) from None


def validate_stream_event(event):
    """Validate one Responses API streaming event (a dict with a `type`)."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise AssertionError(
            f"stream event must be an object with a string 'type': {_excerpt(event)}"
        )
    validate(event, stream_event_component(event["type"]))


# --- introspection helpers -------------------------------------------------------
def required_fields(component_name):
    """Required property names of a component (allOf parts merged, in order)."""
    schemas = raw_document()["components"]["schemas"]
    out = []

    def walk(schema):
        ref = _ref_name(schema)
        if ref:
            walk(schemas[ref])
            return
        for part in schema.get("allOf", []):
            walk(part)
        for name in schema.get("required", []):
            if name not in out:
                out.append(name)

    walk(schemas[component_name])
    return out
