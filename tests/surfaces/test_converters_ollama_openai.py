"""The Ollama and OpenAI converters without a server: /api/chat's ChatStream and
chat_response, a remote Ollama's OllamaLines, /v1/chat/completions' ChatChunks
and completion. The clock is fixed, so every line is known."""

from types import SimpleNamespace

from app.chat.chunks import completion_as_chunk
from app.surfaces.ollama.chat import ChatStream, chat_response
from app.surfaces.ollama.lines import OllamaLines
from app.surfaces.openai.chat import ChatChunks, completion
from tests.support.chunk_reading import FixedClock, fed
from tests.support.fake_upstream import chunk
from tests.support.fake_upstream import completion as answer

STAMP = "2026-01-01T00:00:00.000000Z"  # FixedClock's wall time


def test_api_chat_lines_with_durations_from_the_clock():
    # The clock steps 1000 ns a read: started at 1000, first token at 2000.
    stream = ChatStream("local", started_ns=None, clock=FixedClock())
    lines = fed(
        stream,
        chunk({"reasoning": "hm", "content": "Hi"}),
        chunk(
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{"}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"a": 1}'}}]}),
        chunk({}, finish_reason="tool_calls"),
        chunk(choices=False, usage={"prompt_tokens": 4, "completion_tokens": 3}),
    )
    assert lines == [
        {
            "model": "local",
            "created_at": STAMP,
            "message": {"role": "assistant", "content": "Hi", "thinking": "hm"},
            "done": False,
        },
        {
            "model": "local",
            "created_at": STAMP,
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}}
                ],
            },
            "done": False,
        },
        {
            "model": "local",
            "created_at": STAMP,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 2000,
            "load_duration": 0,
            "prompt_eval_duration": 1000,
            "eval_duration": 1000,
            "prompt_eval_count": 4,
            "eval_count": 3,
        },
    ]
    assert stream.usage == {"prompt_tokens": 4, "completion_tokens": 3}


def test_api_chat_whole_answer():
    whole = answer(
        content=None,
        reasoning="r",
        tool_calls=[("c1", "f", {"x": 1})],
        finish_reason="length",
        usage={"prompt_tokens": 2, "completion_tokens": 1},
    )
    whole["choices"][0]["message"]["tool_calls"].append(
        {"id": "c2", "function": {"name": "g", "arguments": "[1"}}
    )
    assert chat_response(completion_as_chunk(whole), "local", 500, FixedClock()) == {
        "model": "local",
        "created_at": STAMP,
        "message": {
            "role": "assistant",
            "content": "",
            "thinking": "r",
            "tool_calls": [
                {"id": "c1", "function": {"index": 0, "name": "f", "arguments": {"x": 1}}},
                # Not an object: the model's text is kept, visibly.
                {"id": "c2", "function": {"index": 1, "name": "g", "arguments": {"_raw": "[1"}}},
            ],
        },
        "done": True,
        "done_reason": "length",
        "total_duration": 1500,
        "load_duration": 0,
        "prompt_eval_duration": 500,
        "eval_duration": 1000,
        "prompt_eval_count": 2,
        "eval_count": 1,
    }


def test_remote_ollama_lines_are_relabelled_and_counted():
    model = SimpleNamespace(remote_model="llama3", remote_host="http://ollama:11434")
    lines = OllamaLines(model, "local")
    assert lines.feed({"message": {"content": "a"}, "done": False, "model": "llama3"}) == [
        {
            "message": {"content": "a"},
            "done": False,
            "model": "local",
            "remote_model": "llama3",
            "remote_host": "http://ollama:11434",
        }
    ]
    assert lines.usage is None
    lines.feed({"done": True, "prompt_eval_count": "5", "eval_count": 2})
    assert lines.usage == {"completion_tokens": 2}  # counts only
    assert lines.finish() == []
    assert OllamaLines(model, "local").finish() == [
        {"error": "the remote's stream ended before the answer was complete"}
    ]


def test_chat_completions_chunks_are_relabelled_with_the_fields_strict_clients_need():
    chunks = ChatChunks("local", include_usage=True)
    out = fed(
        chunks,
        {"choices": [{"delta": {"content": "Hi"}}], "model": "remote"},
        chunk({}, finish_reason="stop"),
        chunk(choices=False, usage={"prompt_tokens": 1, "completion_tokens": 1}),
    )
    assert out[0] == {
        "choices": [
            {"index": 0, "finish_reason": None, "logprobs": None, "delta": {"content": "Hi"}}
        ],
        "model": "local",
    }
    assert out[-2]["usage"] == {"prompt_tokens": 1, "completion_tokens": 1}
    assert out[-1] == "[DONE]"
    assert chunks.usage == {"prompt_tokens": 1, "completion_tokens": 1}


def test_any_choice_finishing_completes_the_stream():
    two = chunk({})
    two["choices"].append({"index": 1, "delta": {}, "finish_reason": "stop"})
    assert fed(ChatChunks("local", include_usage=False), two)[-1] == "[DONE]"
    failed = fed(ChatChunks("local", include_usage=False), chunk({"content": "half"}))
    assert failed[-1]["error"]["type"] == "api_error"


def test_chat_completions_whole_answer():
    whole = answer(content="Hi")
    whole["choices"][0]["message"]["tool_calls"] = ["junk"]
    del whole["created"], whole["id"]
    out = completion(completion_as_chunk(whole), "local", FixedClock())
    assert out["id"] == "chatcmpl-relay" and out["created"] == 1767225600
    assert out["model"] == "local"
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hi",
        "refusal": None,
        "tool_calls": [],
    }
