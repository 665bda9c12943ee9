"""The one reader of a remote's chat chunks (app/chat/chunks.py): what a chunk
or a whole answer says, as typed deltas, and what a passthrough relays."""

from app.chat.assembly import Pieces, ToolCalls, parse_arguments
from app.chat.chunks import ChunkReader, completion_as_chunk, read_usage
from app.chat.deltas import Finish, ReasoningDelta, TextDelta, ToolCallArgs, ToolCallStart, Usage
from tests.support.fake_upstream import chunk, completion

CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}


def deltas(*raw_chunks):
    reader = ChunkReader()
    return [d for raw in raw_chunks for d in reader.read(raw).deltas]


def test_a_chunk_says_reasoning_text_calls_finish_and_usage_in_that_order():
    raw = chunk(
        {"content": "Hi", "reasoning_content": "Hmm", "tool_calls": [dict(CALL, index=0)]},
        finish_reason="tool_calls",
        usage={"prompt_tokens": 3, "completion_tokens": 2},
    )
    assert deltas(raw) == [
        ReasoningDelta("Hmm"),
        TextDelta("Hi"),
        ToolCallStart(0, "c1", "f"),
        ToolCallArgs(0, '{"a": 1}'),
        Finish("tool_calls"),
        Usage(3, 2, 5, chat={"prompt_tokens": 3, "completion_tokens": 2}),
    ]


def test_text_as_parts_and_reasoning_under_either_name():
    parts = [{"type": "text", "text": "a"}, "junk", {"type": "text", "text": 7}, {"text": "b"}]
    assert deltas(chunk({"content": parts})) == [TextDelta("ab")]
    assert deltas(chunk({"reasoning": "r"})) == [ReasoningDelta("r")]
    # A reasoning_content that is not text does not hide a reasoning that is.
    assert deltas(chunk({"reasoning_content": {"x": 1}, "reasoning": "r"})) == [ReasoningDelta("r")]
    assert deltas(chunk({"content": 42, "reasoning": ["r"]})) == []


def test_tool_calls_that_are_not_objects_are_dropped_here_and_in_the_body():
    for bad in ("f", None, ["f", "{}"], 3, True):
        raw = chunk({"tool_calls": [bad, dict(CALL, index=1), bad]})
        read = ChunkReader().read(raw)
        assert read.deltas == (ToolCallStart(1, "c1", "f"), ToolCallArgs(1, '{"a": 1}'))
        assert read.body["choices"][0]["delta"]["tool_calls"] == [dict(CALL, index=1)]
    # tool_calls that is not a list at all is left out of the body.
    read = ChunkReader().read(chunk({"tool_calls": "f"}))
    assert read.deltas == () and "tool_calls" not in read.body["choices"][0]["delta"]


def test_which_call_a_delta_continues():
    # No index: an id or name starts a call, anything else continues the last.
    assert deltas(
        chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]}),
        chunk({"tool_calls": [{"function": {"arguments": "}"}}]}),
        chunk({"tool_calls": [{"id": "b", "function": {"name": "g"}}]}),
        chunk({"tool_calls": [{"index": True, "function": {"arguments": "[]"}}]}),
    ) == [
        ToolCallStart(0, "a", "f"),
        ToolCallArgs(0, "{"),
        ToolCallArgs(0, "}"),
        ToolCallStart(1, "b", "g"),
        ToolCallArgs(1, "[]"),
    ]
    # Numbered calls may interleave; a later name for a started call is ignored.
    assert deltas(
        chunk({"tool_calls": [{"index": 5, "id": "x", "function": {"name": "f"}}]}),
        chunk({"tool_calls": [{"index": 2, "function": {"name": "g", "arguments": "1"}}]}),
        chunk({"tool_calls": [{"index": 5, "function": {"name": "h", "arguments": "2"}}]}),
    ) == [
        ToolCallStart(5, "x", "f"),
        ToolCallStart(2, None, "g"),
        ToolCallArgs(2, "1"),
        ToolCallArgs(5, "2"),
    ]


def test_a_call_of_wrong_types_is_read_as_far_as_it_goes():
    raw = chunk({"tool_calls": [{"index": 0, "id": 7, "function": "f"}]})
    assert deltas(raw) == [ToolCallStart(0, None, "")]
    raw = chunk({"tool_calls": [{"index": 0, "function": {"name": ["f"], "arguments": 12}}]})
    assert deltas(raw) == [ToolCallStart(0, None, "")]
    # Object arguments (Ollama-style) become their JSON text.
    raw = chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": {"é": 1}}}]})
    assert deltas(raw) == [ToolCallStart(0, None, "f"), ToolCallArgs(0, '{"é": 1}')]


def test_finish_reasons_and_the_stop_strings_named():
    assert deltas(chunk({}, finish_reason="length")) == [Finish("length")]
    # Any other truthy value still ends the answer.
    assert deltas(chunk({}, finish_reason={"type": "stop"})) == [Finish("stop")]
    assert deltas(chunk({}, finish_reason="")) == []
    raw = chunk({}, finish_reason="stop")
    raw["choices"][0].update(stop_reason="END", matched_stop=128001)
    assert deltas(raw) == [Finish("stop", ("END",))]


def test_usage_keeps_counts_only():
    usage = read_usage(
        {
            "prompt_tokens": 120,
            "completion_tokens": "9",
            "total_tokens": -1,
            "cost": 0.5,
            "queue": True,
            "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": None},
            "completion_tokens_details": "x",
            "prompt_cache_hit_tokens": 2**60,
        }
    )
    assert usage.chat == {"prompt_tokens": 120, "prompt_tokens_details": {"cached_tokens": 100}}
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (120, 0, 120)
    assert (usage.cached_tokens, usage.cache_write_tokens, usage.reasoning_tokens) == (100, 0, 0)
    assert read_usage({}) is None and read_usage([1]) is None and read_usage(None) is None
    # DeepSeek's top-level cache hits, and cache writes under either name.
    usage = read_usage(
        {"prompt_cache_hit_tokens": 4, "prompt_tokens_details": {"cache_creation_input_tokens": 3}}
    )
    assert (usage.cached_tokens, usage.cache_write_tokens) == (4, 3)


def test_what_is_no_chunk_and_what_is_an_empty_one():
    reader = ChunkReader()
    for raw in ("x", [1], None, 3):
        assert reader.read(raw) is None
    read = reader.read({"choices": "x", "usage": "y"})
    assert read.body == {"choices": []} and read.deltas == ()
    read = reader.read({"choices": [None, {"delta": "x"}]})
    assert read.body == {"choices": [{"delta": {}}]} and read.deltas == ()


def test_a_whole_answer_is_one_finished_chunk():
    answer = completion(
        content="Sure.",
        reasoning="Think.",
        tool_calls=[("a", "f", {"x": 1}), ("b", "g", {})],
        usage={"prompt_tokens": 1, "completion_tokens": 2},
    )
    answer["choices"][0]["message"]["tool_calls"].insert(1, "junk")
    read = completion_as_chunk(answer)
    assert read.deltas == (
        ReasoningDelta("Think."),
        TextDelta("Sure."),
        ToolCallStart(0, "a", "f"),
        ToolCallArgs(0, '{"x": 1}'),
        ToolCallStart(1, "b", "g"),
        ToolCallArgs(1, "{}"),
        Finish("tool_calls"),
        Usage(1, 2, 3, chat={"prompt_tokens": 1, "completion_tokens": 2}),
    )
    assert len(read.body["choices"][0]["message"]["tool_calls"]) == 2
    # No finish_reason: a whole answer is complete all the same.
    assert completion_as_chunk({"choices": []}).deltas == (Finish("stop"),)


def test_reading_copies_nothing_it_does_not_change():
    raw = chunk({"content": "x" * 1000})
    read = ChunkReader().read(raw)
    assert read.deltas[0].text is raw["choices"][0]["delta"]["content"]
    assert raw["choices"][0]["delta"] == {"content": "x" * 1000}  # the input is left alone


def test_tool_calls_assemble_by_index_in_index_order():
    calls = ToolCalls()
    calls.start(1, "b", "g")
    calls.start(0, "a", "f")
    for piece in ('{"x"', ": 1}"):
        calls.add(0, piece)
    assert calls.add(9, "lost") is None
    assert [(c.id, c.name, c.arguments) for c in calls] == [("a", "f", '{"x": 1}'), ("b", "g", "")]
    pieces = Pieces()
    assert not pieces and pieces.text == ""
    pieces.add("a")
    pieces.add("b")
    assert pieces and pieces.text == "ab" and pieces.text == "ab"


def test_arguments_as_an_object():
    assert parse_arguments("") == {} and parse_arguments("  ") == {}
    assert parse_arguments('{"a": [1]}') == {"a": [1]}
    assert parse_arguments("[1, 2") is None and parse_arguments("[1]") is None
    assert parse_arguments("[" * 100000) is None  # nesting past the parser's limit
