"""ResponsesStream without a server: events, items and the Response, ids and clock fixed."""

from app.chat.chunks import completion_as_chunk
from app.surfaces.responses.request import convert_tools
from app.surfaces.responses.stream import ResponsesStream
from tests.support.chunk_reading import FixedClock, counting_ids, fed
from tests.support.fake_upstream import chunk, completion
from tests.support.openai_schema import validate_stream_event

BODY = {"model": "m", "input": "hi"}
NOW = 1767225600


def stream(body=BODY, tool_names=None, on_complete=None):
    return ResponsesStream(
        body, "m", tool_names, on_complete, ids=counting_ids(), clock=FixedClock(NOW)
    )


def check(events):
    """Each event valid for the spec, numbered in order; their types."""
    for number, event in enumerate(events):
        validate_stream_event(event)
        assert event["sequence_number"] == number
    return [e["type"][len("response.") :] for e in events]


def test_a_text_answer_gives_these_events_and_response():
    s = stream()
    events = s.start() + fed(
        s,
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, finish_reason="stop"),
        chunk(choices=False, usage={"prompt_tokens": 5, "completion_tokens": 2}),
    )
    assert check(events) == [
        "created",
        "in_progress",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "completed",
    ]
    ref = {"item_id": "msg_2", "output_index": 0}
    assert events[4] == {
        "type": "response.output_text.delta",
        "sequence_number": 4,
        **ref,
        "content_index": 0,
        "delta": "Hel",
        "logprobs": [],
    }
    response = events[-1]["response"]
    assert (response["id"], response["created_at"], response["status"]) == (
        "resp_1",
        NOW,
        "completed",
    )
    assert response["output"] == [
        {
            "id": "msg_2",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
            ],
        }
    ]
    assert response["usage"] == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 7,
    }
    assert s.usage == {"prompt_tokens": 5, "completion_tokens": 2}


def test_reasoning_then_function_custom_and_namespaced_calls():
    tools = [
        {"type": "function", "name": "weather"},
        {"type": "custom", "name": "patch"},
        {"type": "namespace", "name": "fs", "tools": [{"type": "function", "name": "read"}]},
    ]
    _, names = convert_tools(tools)
    s = stream(dict(BODY, tools=tools), names)
    events = s.start() + fed(
        s,
        chunk({"reasoning_content": "think"}),
        chunk({"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "weather"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Oslo"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "function": {"name": "patch", "arguments": '{"input": "*** x"}'}},
                    {"index": 2, "id": "c2", "function": {"name": "fs__read", "arguments": "{}"}},
                ]
            }
        ),
        chunk({}, finish_reason="tool_calls"),
    )
    kinds = check(events)
    assert kinds.count("function_call_arguments.delta") == 2  # not for the custom tool
    assert "custom_tool_call_input.done" in kinds
    output = s.response["output"]
    assert [o["type"] for o in output] == [
        "reasoning",
        "function_call",
        "custom_tool_call",
        "function_call",
    ]
    assert output[0]["summary"] == [{"type": "summary_text", "text": "think"}]
    assert (output[1]["call_id"], output[1]["name"], output[1]["arguments"]) == (
        "c0",
        "weather",
        '{"city": "Oslo"}',
    )
    # No id from the remote: one is made.
    assert (output[2]["call_id"], output[2]["input"]) == ("call_4", "*** x")
    assert (output[3]["namespace"], output[3]["name"]) == ("fs", "read")
    assert s.assistant_message() == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "think",
        "tool_calls": [
            {
                "id": "c0",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
            },
            {
                "id": "call_4",
                "type": "function",
                "function": {"name": "patch", "arguments": '{"input": "*** x"}'},
            },
            {"id": "c2", "type": "function", "function": {"name": "fs__read", "arguments": "{}"}},
        ],
    }


def test_length_is_incomplete_and_a_break_closes_open_items_as_incomplete():
    s = stream()
    events = fed(s, chunk({"content": "cut"}), chunk({}, finish_reason="length"))
    assert events[-1]["type"] == "response.incomplete"
    assert s.response["incomplete_details"] == {"reason": "max_output_tokens"}
    s = stream()
    s.start()
    s.feed(completion_as_chunk(completion(tool_calls=[("c", "f", {})])))
    events = s.fail("the remote broke")
    assert [e["type"] for e in events][-2:] == ["response.output_item.done", "response.failed"]
    assert s.response["status"] == "failed"
    assert s.response["error"] == {"code": "server_error", "message": "the remote broke"}
    # The text closed when the call began; the call was still open.
    assert [o["status"] for o in s.response["output"]] == ["completed", "incomplete"]


def test_a_failing_on_complete_fails_the_response():
    def refuse(_):
        raise RuntimeError("could not store")

    s = stream(on_complete=refuse)
    events = fed(s, chunk({"content": "x"}), chunk({}, finish_reason="stop"))
    assert events[-1]["type"] == "response.failed"
    assert s.response["error"]["message"] == "could not store"


def test_an_unfinished_stream_fails_and_the_whole_answer_matches_the_stream():
    s = stream()
    assert fed(s, chunk({"content": "half"}))[-1]["response"]["error"]["message"] == (
        "the remote's stream ended before the answer was complete"
    )
    whole, streamed = stream(), stream()
    whole.feed(completion_as_chunk(completion(content="Hi", reasoning="r")))
    whole.finish()
    fed(
        streamed,
        chunk({"reasoning_content": "r", "content": "Hi"}),
        chunk({}, finish_reason="stop"),
        chunk(
            choices=False, usage={"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        ),
    )
    assert whole.response == streamed.response
