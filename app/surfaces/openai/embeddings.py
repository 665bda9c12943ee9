"""/v1/embeddings answers in the encoding the client asked for.

`encoding_format: "base64"` (the openai SDK's default) is each vector's
little-endian float32 values, base64-encoded, as OpenAI sends it. A remote
may not know it (it answers lists of floats) or may answer base64 to a
client that wanted floats: each vector is converted to what was asked.
"""

import base64
import binascii
import struct
from typing import Any


def _to_base64(vector: list[Any]) -> str | list[Any]:
    try:
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    except (OverflowError, struct.error):  # past float32: the floats as they came
        return vector


def _to_floats(text: str) -> list[float] | str:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text
    if len(raw) % 4:
        return text  # not float32 values: passed on as the remote sent it
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def _numbers(vector: Any) -> list[Any] | None:
    if isinstance(vector, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in vector
    ):
        return vector
    return None


def encoded(answer: dict[str, Any], encoding_format: str | None) -> dict[str, Any]:
    """`answer` (an embeddings list) with every vector in `encoding_format`."""
    data = answer.get("data")
    if not isinstance(data, list):
        return answer
    wanted_base64 = encoding_format == "base64"
    items = []
    for item in data:
        if isinstance(item, dict):
            vector = item.get("embedding")
            numbers = _numbers(vector)
            if wanted_base64 and numbers is not None:
                item = dict(item, embedding=_to_base64(numbers))
            elif not wanted_base64 and isinstance(vector, str):
                item = dict(item, embedding=_to_floats(vector))
        items.append(item)
    return dict(answer, data=items)
