"""MessagesStream without a server: the exact events and Message, ids fixed."""

from app.chat.chunks import completion_as_chunk
from app.surfaces.anthropic.stream import SIGNATURE, MessagesStream
from tests.support.chunk_reading import counting_ids, fed
from tests.support.fake_upstream import chunk, completion

ZERO = {
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


def call(index, call_id=None, name=None, arguments=""):
    function = {"arguments": arguments}
    if name:
        function["name"] = name
    delta = {"index": index, "function": function}
    if call_id:
        delta["id"] = call_id
    return chunk({"tool_calls": [delta]})


def test_text_and_a_tool_call_give_these_events():
    stream = MessagesStream("claude", ids=counting_ids())
    assert stream.start() == [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": ZERO,
            },
        },
        {"type": "ping"},
    ]
    events = fed(
        stream,
        chunk({"reasoning": "Hm"}),
        chunk({"content": "Hi"}),
        call(0, name="Bash", arguments='{"c":'),
        call(0, arguments=' "ls"}'),
        chunk({}, finish_reason="tool_calls"),
        chunk(choices=False, usage={"prompt_tokens": 10, "completion_tokens": 4}),
    )
    usage = dict(ZERO, input_tokens=10, output_tokens=4)
    assert events == [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Hm"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": SIGNATURE},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            # No id from the remote: one is made (the counter's second).
            "content_block": {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"c":'},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ' "ls"}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": usage,
        },
        {"type": "message_stop"},
    ]
    assert stream.message["content"] == [
        {"type": "thinking", "thinking": "Hm", "signature": SIGNATURE},
        {"type": "text", "text": "Hi"},
        {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {"c": "ls"}},
    ]
    assert stream.usage == {"prompt_tokens": 10, "completion_tokens": 4}


def test_a_call_starting_while_another_is_open_waits_for_the_end():
    stream = MessagesStream("claude", ids=counting_ids())
    events = fed(
        stream,
        call(0, "a", "f", "{"),
        call(1, "b", "g", "[1"),
        call(0, arguments="}"),
        call(1, arguments="]"),
        chunk({"content": "then text"}),
        call(0, arguments=" "),  # the first call's block is closed by now
        chunk({}, finish_reason="stop"),
    )
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [(s["type"], s.get("id")) for s in starts] == [
        ("tool_use", "a"),
        ("text", None),
        ("tool_use", "b"),
    ]
    # The waiting call goes out whole, in one delta.
    (waited,) = [e for e in events if e.get("index") == 2 and e["type"] == "content_block_delta"]
    assert waited["delta"]["partial_json"] == "[1]"
    assert [b.get("input") for b in stream.message["content"]] == [{}, None, {"_arguments": "[1]"}]
    assert stream.message["stop_reason"] == "tool_use"


def test_tool_calls_with_no_call_left_end_the_turn():
    stream = MessagesStream("claude", ids=counting_ids())
    fed(
        stream,
        chunk({"content": "x", "tool_calls": ["junk"]}),
        chunk({}, finish_reason="tool_calls"),
    )
    assert stream.message["stop_reason"] == "end_turn"


def test_the_whole_answer_builds_the_message_of_the_stream():
    answer = completion(content="Sure.", tool_calls=[("functions.Bash:0", "Bash", {"c": 1})])
    whole = MessagesStream("claude", ids=counting_ids())
    whole.feed(completion_as_chunk(answer))
    whole.finish()
    streamed = MessagesStream("claude", ids=counting_ids())
    fed(
        streamed,
        chunk({"content": "Sure."}),
        call(0, "functions.Bash:0", "Bash", '{"c": 1}'),
        chunk({}, finish_reason="tool_calls"),
        chunk(choices=False, usage=answer["usage"]),
    )
    assert whole.message == streamed.message
    assert whole.message["content"][1]["id"].startswith("toolu_relay_")


def test_fail_and_an_unfinished_stream():
    stream = MessagesStream("claude", ids=counting_ids())
    assert stream.fail("boom") == [
        {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    ]
    assert fed(MessagesStream("claude"), chunk({"content": "half"}))[-1]["type"] == "error"
