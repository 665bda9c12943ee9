"""Property: whatever a remote sends, every converter answers the surface's way.

Hypothesis feeds each surface's converter, streamed and whole, random chat
chunks (wrong types, missing fields, nulls, huge strings, deep nesting) and
well-formed streams mutated at random places, read as the relay reads them
(app.chat.chunks). Nothing may escape but the relay's upstream error: no
exception, every item framed as the relay frames it, the stream ended by the
surface's end or its in-band error (the upstream's, or "ended before the
answer was complete", never "internal error"), and usage counts that are
counts.

CI runs a fixed seed (derandomize) and RELAY_FUZZ_EXAMPLES examples per test
(default 150); ops/fuzz/converters runs many more, on a seed of its choosing.
"""

import json
import os
from types import SimpleNamespace

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from app.chat.chunks import ChunkReader, completion_as_chunk
from app.chat.common import INCOMPLETE
from app.surfaces.anthropic.stream import MessagesStream
from app.surfaces.ollama.chat import ChatStream, chat_response
from app.surfaces.ollama.lines import OllamaLines
from app.surfaces.openai.chat import ChatChunks, completion
from app.surfaces.responses.request import convert_tools
from app.surfaces.responses.stream import ResponsesStream
from app.web.streaming import ndjson_line, sse_data, sse_event
from tests.support.fake_upstream import chunk, text_stream

EXAMPLES = int(os.environ.get("RELAY_FUZZ_EXAMPLES", "150"))
SEED = os.environ.get("RELAY_FUZZ_SEED")
UPSTREAM_ERROR = "http://remote sent a stream item that is not a chat chunk"


def fuzz(test):
    """A fixed seed in CI; RELAY_FUZZ_SEED picks another."""
    test = settings(
        max_examples=EXAMPLES,
        derandomize=SEED is None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )(test)
    return seed(int(SEED))(test) if SEED is not None else test


# --- What a remote may send ---------------------------------------------------

HUGE = "x" * 300_000
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "stop", "tool_calls", "{", "\ud800", "\x00", "é", HUGE]),
)
keys = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["index", "id", "name", "arguments", "content", "text", "type"]),
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
deep = st.integers(min_value=1, max_value=400).map(lambda n: json.loads("[" * n + "]" * n))


arguments = st.one_of(
    st.sampled_from(["", "{", '{"a": 1}', "}", "[1, 2", "null", '"x"', "[" * 2000, HUGE]),
    st.text(max_size=30),
    st.dictionaries(st.text(max_size=5), json_values, max_size=3),
)


def typed(**fields):
    """An object with each field of the right type, present or not."""
    return st.fixed_dictionaries({}, optional=fields)


tool_call = typed(
    index=st.integers(min_value=-2, max_value=4),
    id=st.text(max_size=10),
    type=st.just("function"),
    function=typed(name=st.sampled_from(["f", "g", "fs__read", "patch", ""]), arguments=arguments),
)
parts = st.lists(typed(type=st.just("text"), text=st.text(max_size=10)), max_size=3)
message = typed(
    role=st.just("assistant"),
    content=st.one_of(st.text(max_size=20), parts, st.just(HUGE)),
    reasoning_content=st.text(max_size=20),
    reasoning=st.text(max_size=20),
    tool_calls=st.lists(tool_call, max_size=3),
)
counts = st.integers(min_value=0, max_value=10**6)
usage = typed(
    prompt_tokens=counts,
    completion_tokens=counts,
    total_tokens=counts,
    prompt_cache_hit_tokens=counts,
    prompt_tokens_details=typed(cached_tokens=counts, cache_write_tokens=counts),
    completion_tokens_details=typed(reasoning_tokens=counts),
)


def answer_like(part):
    """A chunk (part "delta") or a whole answer ("message") of the right types."""
    choice = st.fixed_dictionaries(
        {part: message},
        optional={
            "index": st.integers(min_value=0, max_value=2),
            "finish_reason": st.sampled_from(
                [None, "stop", "length", "tool_calls", "content_filter", ""]
            ),
            "stop_reason": st.sampled_from(["END", None, 7]),
            "matched_stop": st.sampled_from(["END", None, 7]),
        },
    )
    return st.fixed_dictionaries(
        {"choices": st.lists(choice, min_size=1, max_size=2)}, optional={"usage": usage}
    )


@st.composite
def mutated(draw, template):
    """`template` with one to four of its values, anywhere in it, replaced by
    any JSON (or removed)."""
    data = json.loads(json.dumps(template))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        places, todo = [], [data]
        while todo:  # every (container, key) in the tree, each as likely
            node = todo.pop()
            for key in list(node) if isinstance(node, dict) else range(len(node)):
                places.append((node, key))
                if isinstance(node[key], (dict, list)):
                    todo.append(node[key])
        # Items of lists (choices, tool calls, parts) half the time: a
        # remote's lists are where one bad item hides among good ones.
        items = [place for place in places if isinstance(place[0], list)]
        if items and draw(st.booleans()):
            places = items
        if not places:
            break
        node, key = draw(st.sampled_from(places))
        if isinstance(node, dict) and draw(st.integers(0, 4)) == 0:
            del node[key]
        else:
            node[key] = draw(st.one_of(json_values, deep))
    return data


def wrong_somewhere(strategy):
    """Right types, or right types with values replaced at random places."""
    return st.one_of(strategy, strategy.flatmap(mutated))


WELL_FORMED = [
    *text_stream("Hel", "lo", reasoning=("hm",)),
    chunk(
        {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a"'}}]}
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
    chunk({}, finish_reason="tool_calls"),
]
# A chunk, mostly; now and then something that is no chunk at all.
stream_item = st.one_of(wrong_somewhere(answer_like("delta")), json_values)
streams = st.one_of(st.lists(stream_item, max_size=6), mutated(WELL_FORMED))
whole_answers = st.one_of(
    wrong_somewhere(answer_like("message")), json_values.filter(lambda v: isinstance(v, dict))
)


# --- The surfaces -------------------------------------------------------------

TOOLS = [
    {"type": "function", "name": "f"},
    {"type": "custom", "name": "patch"},
    {"type": "namespace", "name": "fs", "tools": [{"type": "function", "name": "read"}]},
]
TOOL_NAMES = convert_tools(TOOLS)[1]
RESPONSES_BODY = {"model": "m", "input": "hi", "tools": TOOLS}


def check_usage(converter):
    usage = converter.usage
    assert usage is None or isinstance(usage, dict)
    for key in ("prompt_tokens", "completion_tokens"):
        value = (usage or {}).get(key, 0)
        assert type(value) is int and value >= 0


def error_of(surface, item):
    """The in-band error message `item` carries, or None."""
    if surface in ("api-chat", "chat-completions") and isinstance(item, dict):
        error = item.get("error")
        return error.get("message") if isinstance(error, dict) else error
    if surface == "messages" and item.get("type") == "error":
        return item["error"]["message"]
    if surface == "responses" and item.get("type") == "response.failed":
        return item["response"]["error"]["message"]
    return None


SURFACES = {
    "chat-completions": (lambda: ChatChunks("m", include_usage=True), sse_data),
    "api-chat": (lambda: ChatStream("m"), ndjson_line),
    "messages": (lambda: MessagesStream("m", ["END"]), sse_event),
    "responses": (lambda: ResponsesStream(RESPONSES_BODY, "m", TOOL_NAMES), sse_event),
}


def relay_stream(surface, items):
    """What relay() sends for `items`: each read as app.remotes.openai reads it."""
    make, frame = SURFACES[surface]
    converter = make()
    out = list(converter.start()) if hasattr(converter, "start") else []
    reader = ChunkReader()
    for raw in items:
        read = reader.read(raw)
        if read is None:  # _chat_chunks' UpstreamError
            out += converter.fail(UPSTREAM_ERROR)
            break
        out += converter.feed(read)
    else:
        out += converter.finish()
    for item in out:
        frame(item)
    check_usage(converter)
    return out


@fuzz
@given(items=streams, surface=st.sampled_from(sorted(SURFACES)))
def test_every_stream_ends_the_surface_way(items, surface):
    out = relay_stream(surface, items)
    errors = [error_of(surface, item) for item in out if not isinstance(item, str)]
    messages = [e for e in errors if e is not None]
    assert messages in ([], [UPSTREAM_ERROR], [INCOMPLETE]), messages
    if not messages:
        last = out[-1]
        assert {
            "chat-completions": lambda: last == "[DONE]",
            "api-chat": lambda: last["done"] is True,
            "messages": lambda: last == {"type": "message_stop"},
            "responses": lambda: last["type"] in ("response.completed", "response.incomplete"),
        }[surface]()


def dumps(obj):
    # As the app's JSON provider writes a whole answer (ensure_ascii, as Flask's default).
    return json.dumps(obj, ensure_ascii=True)


@fuzz
@given(raw=whole_answers)
def test_every_whole_answer_is_an_answer(raw):
    dumps(completion(completion_as_chunk(raw), "m"))
    answer = chat_response(completion_as_chunk(raw), "m")
    assert answer["done"] is True
    dumps(answer)
    messages = MessagesStream("m", ["END"])
    messages.feed(completion_as_chunk(raw))
    messages.finish()
    assert messages.message is not None
    dumps(messages.message)
    responses = ResponsesStream(RESPONSES_BODY, "m", TOOL_NAMES)
    responses.feed(completion_as_chunk(raw))
    responses.finish()
    assert responses.response["status"] in ("completed", "incomplete")
    dumps(responses.response)
    check_usage(messages)
    check_usage(responses)


@fuzz
@given(lines=st.lists(st.dictionaries(keys | st.just("done"), json_values, max_size=5), max_size=5))
def test_a_remote_ollamas_lines_are_relayed(lines):
    # app.remotes.ollama lets objects through, and only objects.
    converter = OllamaLines(SimpleNamespace(remote_model="r", remote_host="h"), "m")
    out = [item for line in lines for item in converter.feed(line)] + converter.finish()
    for item in out:
        ndjson_line(item)
    check_usage(converter)
