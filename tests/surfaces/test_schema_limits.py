"""Payload validation limited to the fields a body has (app.fast.schema_subsets)
says exactly what the whole schema says: the same loaded data, or the same
errors, for bodies of every field with good and bad values, some missing.
"""

import inspect
import random

import pytest
from marshmallow import Schema, ValidationError

from app.fast import schema_subsets
from app.surfaces import schema as base
from app.surfaces.admin import key_schemas as keys
from app.surfaces.admin import model_schemas as models
from app.surfaces.anthropic import schemas as messages
from app.surfaces.ollama import schemas as ollama
from app.surfaces.openai import schemas as openai
from app.surfaces.responses import schemas as responses

pytestmark = pytest.mark.skipif(
    not schema_subsets.SUPPORTED, reason="not the marshmallow this fast path was tested with"
)

# Values of every JSON type, and the shapes the schemas look for.
VALUES = [
    None,
    "",
    "x",
    "m:latest",
    "no spaces",
    0,
    1,
    -1,
    1.5,
    True,
    False,
    [],
    {},
    ["a"],
    [{"role": "user", "content": "hi"}],
    [{"role": "nobody"}],
    {"type": "json_object"},
    {"temperature": 0.5},
    "2026-12-31",
    [1, 2],
]

SCHEMAS = sorted(
    {
        cls
        for module in (base, keys, messages, models, ollama, openai, responses)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Schema)
        and cls.__module__.startswith("app.surfaces.")
        and cls._declared_fields
    },
    key=lambda cls: cls.__name__,
)


def _outcome(schema, body):
    try:
        return "loaded", schema.load(body)
    except ValidationError as exc:
        return "refused", exc.messages


@pytest.mark.parametrize("cls", SCHEMAS, ids=lambda cls: cls.__name__)
def test_a_limited_load_says_what_the_whole_schema_says(cls):
    whole = cls()
    names = [field.data_key or name for name, field in whole.load_fields.items()]
    chance = random.Random(cls.__name__)  # fixed: the same bodies every run
    limited_at_least_once = False
    for _ in range(300):
        body = {name: chance.choice(VALUES) for name in names if chance.random() < 0.4}
        if chance.random() < 0.3:
            body["not_declared"] = chance.choice(VALUES)
        used = schema_subsets.limited(whole, body)
        limited_at_least_once |= used is not whole
        assert _outcome(used, body) == _outcome(whole, body), body
    # Schemas with a pre_load hook are always loaded whole; the others are limited.
    assert limited_at_least_once == (schema_subsets.always(cls) is not None)


def test_an_instance_with_settings_of_its_own_is_loaded_as_it_is():
    schema = openai.ChatCompletionSchema(partial=True)
    assert schema_subsets.limited(schema, {"model": "m"}) is schema
