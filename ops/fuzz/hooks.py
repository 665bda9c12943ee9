"""Schemathesis hooks for fuzzing the relay (tests/support/fuzzing.py loads them).

Generated model names are random, so nearly every request would stop at a 404
before reaching a remote. These hooks make a share of the requests name the
models that tests/support/fuzzing.py created on the fake upstream, so that the
converters and the remote clients are fuzzed too. Hypothesis draws the
choice, so a run stays reproducible from its seed.
"""

import schemathesis
from hypothesis import strategies as st
from hypothesis.internal import lambda_sources

_describe_lambda = lambda_sources.lambda_description


def _lambda_description(f):
    """Hypothesis parses a lambda's source to name it in a strategy's repr, which it
    builds while checking deep recursive strategies (any-JSON values); CPython 3.11's
    ast.parse then fails at that depth (SystemError: AST constructor recursion depth
    mismatch) and the run stops with an error that is not the relay's.
    A name is all it is used for here."""
    try:
        return _describe_lambda(f)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources.lambda_description = _lambda_description

# The models tests/support/fuzzing.py creates (an OpenAI-compatible and an Ollama remote).
MODELS = ("remote", "native:latest")

# Operations whose `model` may be swapped for a real one: those that use or
# show a model. Not /api/create, /api/delete, /api/copy: they would replace or
# remove the models the rest of the run relies on.
_USES_A_MODEL = {
    "/api/chat",
    "/api/generate",
    "/api/embed",
    "/api/embeddings",
    "/api/show",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/messages",
    "/v1/messages/count_tokens",
}


def _named(value):
    return st.sampled_from([value] + [dict(value, model=name) for name in MODELS])


@schemathesis.hook
def flatmap_body(context, body):
    if context.operation.path in _USES_A_MODEL and isinstance(body, dict):
        return _named(body)
    return st.just(body)


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    if context.operation.path == "/v1/models/{model}" and isinstance(path_parameters, dict):
        return _named(path_parameters)
    return st.just(path_parameters)
