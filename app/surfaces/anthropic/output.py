"""What a Messages request asks of the answer's form, and what its end says.

Structured output: Anthropic's `output_config.format` (`{"type":
"json_schema", "schema": {...}}`, what the anthropic SDK's
`messages.parse(output_format=Model)` sends; `output_format` at the top
level in the earlier beta) as Chat Completions' `response_format`, which
llama.cpp, vLLM, Ollama and OpenAI enforce.

Stop sequences: Chat Completions' `finish_reason: "stop"` does not say
whether a stop sequence or the model's own end stopped it, and remotes
strip the stop text. `matched_stop` tells which one stopped the answer,
where that can be known (see its rule).
"""

import re
from typing import Any

from app.chat.problems import RequestProblem

# OpenAI's rule for json_schema.name.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """The Chat Completions `response_format` for a Messages request's
    output format, or None when it asks for none. Not strict: OpenAI's
    strict mode refuses schemas with optional properties, which Anthropic
    takes; servers that enforce schemas by grammar enforce them anyway."""
    config = body.get("output_config")
    param = "output_config.format"
    given = config.get("format") if isinstance(config, dict) else None
    if given is None and body.get("output_format") is not None:
        given, param = body["output_format"], "output_format"
    if given is None:
        return None
    if not isinstance(given, dict) or given.get("type") != "json_schema":
        raise RequestProblem('the output format must be {"type": "json_schema", ...}', param)
    schema = given.get("schema")
    if not isinstance(schema, dict):
        raise RequestProblem("schema must be a JSON Schema object", f"{param}.schema")
    title = schema.get("title")
    name = title if isinstance(title, str) and _NAME.match(title) else "output"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def matched_stop(
    finish_reason: str | None, stop_sequences: list[str], named: str | None, text: str
) -> str | None:
    """The stop sequence that ended a text answer, or None (its own end).

    Only a `"stop"` finish of a request that had stop sequences can have
    one: the one the remote names (vLLM's `stop_reason`, SGLang's
    `matched_stop`); else the one the answer's text ends with (a remote
    that keeps the stop text). A remote that strips it and names none
    (llama.cpp, OpenAI) leaves nothing to tell a stop sequence from the
    model's own end, even with one stop sequence: None then, never a guess
    (a client told "stop_sequence" after a whole answer would wait for more).
    """
    if finish_reason != "stop" or not stop_sequences:
        return None
    if named is not None:
        return named if named in stop_sequences else None
    ending = [s for s in stop_sequences if s and text.endswith(s)]
    return max(ending, key=len) if ending else None
