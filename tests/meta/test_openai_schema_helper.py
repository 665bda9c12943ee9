"""The OpenAI-schema test helper itself works (tests/support/openai_schema.py)."""

import copy
import time

import pytest

from tests.support import openai_schema as oas


def chat_completion():
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "llama3",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def text_delta():
    return {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "Hel",
        "sequence_number": 4,
        "logprobs": [],
    }


def minimal_response():
    """Exactly the fields the spec requires for `Response` (plus `status`)."""
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "model": "llama3",
        "tools": [],
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "Hello!", "annotations": [], "logprobs": []}
                ],
            }
        ],
        "parallel_tool_calls": True,
        "metadata": {},
        "tool_choice": "auto",
        "temperature": None,
        "top_p": None,
    }


# --- component names ------------------------------------------------------------
def test_component_names_exist_and_match_paths():
    names = oas.component_names()  # raises if any is missing
    assert names["chat_completion"] == "CreateChatCompletionResponse"
    for name, (path, method, status, media) in oas.PATH_SOURCES.items():
        assert oas.path_component(path, method, status, media) == name
    # DELETE /responses/{id} 200 has no schema in the document.
    assert oas.path_component("/responses/{response_id}", "delete") is None
    assert oas.RESPONSE_DELETED is None


# --- chat completions --------------------------------------------------------------
def test_valid_chat_completion_passes():
    oas.validate(chat_completion(), oas.CHAT_COMPLETION)


@pytest.mark.parametrize("field", ["id", "object", "created", "model", "choices"])
def test_chat_completion_missing_required_field_fails(field):
    body = chat_completion()
    del body[field]
    with pytest.raises(AssertionError) as exc:
        oas.validate(body, oas.CHAT_COMPLETION)
    msg = str(exc.value)
    assert "required" in msg and repr(field) in msg


def test_error_message_points_at_nested_path():
    body = chat_completion()
    del body["choices"][0]["message"]["refusal"]  # required (but nullable)
    with pytest.raises(AssertionError) as exc:
        oas.validate(body, oas.CHAT_COMPLETION)
    msg = str(exc.value)
    assert "$.choices[0].message" in msg and "'refusal'" in msg and "keyword: required" in msg


def test_chat_stream_chunk_finish_reason_is_required_but_nullable():
    chunk = {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "llama3",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}
        ],
    }
    oas.validate(chunk, oas.CHAT_COMPLETION_CHUNK)
    del chunk["choices"][0]["finish_reason"]
    with pytest.raises(AssertionError):
        oas.validate(chunk, oas.CHAT_COMPLETION_CHUNK)
    # usage: {$ref: CompletionUsage, nullable: true} must admit null.
    oas.validate({**chunk, "choices": [], "usage": None}, oas.CHAT_COMPLETION_CHUNK)


# --- responses streaming --------------------------------------------------------------
def test_valid_output_text_delta_passes():
    assert oas.stream_event_component("response.output_text.delta") == "ResponseTextDeltaEvent"
    oas.validate_stream_event(text_delta())


def test_output_text_delta_without_sequence_number_fails():
    event = text_delta()
    del event["sequence_number"]
    with pytest.raises(AssertionError, match="sequence_number"):
        oas.validate_stream_event(event)


def test_unknown_stream_event_type_fails():
    with pytest.raises(AssertionError, match="unknown"):
        oas.validate_stream_event({"type": "response.bogus", "sequence_number": 1})
    with pytest.raises(AssertionError):
        oas.validate_stream_event({"sequence_number": 1})


def test_stream_event_map_covers_the_union():
    types = oas.stream_event_types()
    union = oas.raw_document()["components"]["schemas"][oas.RESPONSE_STREAM_EVENT]
    members = {b["$ref"].rsplit("/", 1)[-1] for b in union.get("anyOf", union.get("oneOf", []))}
    assert set(types.values()) == members
    for t in (
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.function_call_arguments.delta",
        "error",
    ):
        assert t in types


def test_lifecycle_event_carries_full_response():
    event = {"type": "response.completed", "sequence_number": 9, "response": minimal_response()}
    oas.validate_stream_event(event)
    del event["response"]["tools"]
    with pytest.raises(AssertionError, match="tools"):
        oas.validate_stream_event(event)


# --- Response object ----------------------------------------------------------------
def test_response_required_fields():
    assert oas.required_fields(oas.RESPONSE) == [
        "id",
        "object",
        "created_at",
        "error",
        "incomplete_details",
        "instructions",
        "model",
        "tools",
        "output",
        "parallel_tool_calls",
        "metadata",
        "tool_choice",
        "temperature",
        "top_p",
    ]


def test_minimal_response_passes():
    oas.validate(minimal_response(), oas.RESPONSE)


@pytest.mark.parametrize("field", oas.required_fields(oas.RESPONSE))
def test_response_missing_required_field_fails(field):
    body = minimal_response()
    del body[field]
    with pytest.raises(AssertionError, match=field):
        oas.validate(body, oas.RESPONSE)


def test_response_output_item_error_is_narrowed_to_the_matching_branch():
    body = minimal_response()
    del body["output"][0]["content"][0]["annotations"]
    with pytest.raises(AssertionError) as exc:
        oas.validate(body, oas.RESPONSE)
    msg = str(exc.value)
    assert "$.output[0].content[0]" in msg and "annotations" in msg


def test_response_with_reasoning_and_function_call_items():
    body = minimal_response()
    body["output"] = [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
    ]
    body["usage"] = {
        "input_tokens": 3,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 5,
    }
    oas.validate(body, oas.RESPONSE)
    bad = copy.deepcopy(body)
    del bad["usage"]["input_tokens_details"]["cache_write_tokens"]
    with pytest.raises(AssertionError, match="cache_write_tokens"):
        oas.validate(bad, oas.RESPONSE)


# --- other bodies -------------------------------------------------------------------
def test_models_embeddings_error_bodies():
    model = {"id": "llama3", "object": "model", "created": 1700000000, "owned_by": "ollama"}
    oas.validate(model, oas.MODEL)
    oas.validate({"object": "list", "data": [model]}, oas.MODELS_LIST)
    oas.validate(
        {
            "object": "list",
            "model": "nomic",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        },
        oas.EMBEDDINGS,
    )
    oas.validate(
        {"error": {"message": "x", "type": "invalid_request_error", "param": None, "code": None}},
        oas.ERROR_RESPONSE,
    )
    with pytest.raises(AssertionError, match="param"):
        oas.validate(
            {"error": {"message": "x", "type": "invalid_request_error", "code": None}},
            oas.ERROR_RESPONSE,
        )
    with pytest.raises(AssertionError):
        oas.validate(
            {"object": "list", "data": [dict(model, created="yesterday")]}, oas.MODELS_LIST
        )


def test_unknown_component_raises_keyerror():
    with pytest.raises(KeyError):
        oas.validate({}, "NoSuchComponent")


# --- the document fixes -----------------------------------------------------------------
def test_fix_nullable_variants():
    fix = oas._fix
    assert fix({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    assert fix({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"],
        "enum": ["a", None],
    }
    ref = fix({"$ref": "#/components/schemas/X", "nullable": True})
    assert ref == {"anyOf": [{"type": "null"}, {"$ref": "#/components/schemas/X"}]}
    hoisted = fix({"allOf": [{"$ref": "#/components/schemas/X"}, {"nullable": True}]})
    assert hoisted == {"anyOf": [{"type": "null"}, {"allOf": [{"$ref": "#/components/schemas/X"}]}]}
    assert fix({"oneOf": [{"type": "string"}], "nullable": True}) == {
        "anyOf": [{"type": "null"}, {"anyOf": [{"type": "string"}]}]
    }
    assert fix({"type": "integer", "nullable": False}) == {"type": "integer"}
    assert fix({"type": "number", "minimum": 0, "exclusiveMinimum": True}) == {
        "type": "number",
        "exclusiveMinimum": 0,
    }
    # A property literally named "nullable" / "oneOf" is left alone.
    assert fix({"properties": {"nullable": {"type": "boolean"}}}) == {
        "properties": {"nullable": {"type": "boolean"}}
    }


def test_no_nullable_or_oneof_left_in_fixed_document():
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in oas._NON_SCHEMA_KEYS or key.startswith("x-"):
                    continue
                assert key not in ("nullable", "oneOf", "$recursiveRef")
                if key in oas._SCHEMA_MAP_KEYS:
                    for sub in value.values():
                        walk(sub)
                else:
                    walk(value)
        elif isinstance(node, list):
            for sub in node:
                walk(sub)

    walk(oas.fixed_schemas())


def test_fast_enough_for_hundreds_of_calls():
    oas.validate(minimal_response(), oas.RESPONSE)  # warm the caches
    start = time.perf_counter()
    for _ in range(300):
        oas.validate(minimal_response(), oas.RESPONSE)
        oas.validate_stream_event(text_delta())
    assert time.perf_counter() - start < 10
