"""What the converters assemble from deltas: growing text, and tool calls
with their arguments, by the remote's index.

Text grows by appending pieces to a list and is joined when read: `+=` on an
attribute copies all the text so far on every chunk.
"""

import json
from collections.abc import Iterator
from typing import Any


class Pieces:
    """Text that grows piece by piece."""

    __slots__ = ("_pieces",)

    def __init__(self) -> None:
        self._pieces: list[str] = []

    def add(self, piece: str) -> None:
        self._pieces.append(piece)

    def __bool__(self) -> bool:
        return bool(self._pieces)

    @property
    def text(self) -> str:
        if len(self._pieces) > 1:
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""


class ToolCall:
    """A call as it grows: the id the client sees, its name and arguments."""

    __slots__ = ("index", "id", "name", "arguments_text")

    def __init__(self, index: int, call_id: str, name: str) -> None:
        self.index, self.id, self.name = index, call_id, name
        self.arguments_text = Pieces()

    @property
    def arguments(self) -> str:
        return self.arguments_text.text


class ToolCalls:
    """Every call of one answer, by the remote's index (ToolCallStart and
    ToolCallArgs carry it); iterated in index order."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, ToolCall] = {}

    def start(self, index: int, call_id: str, name: str) -> ToolCall:
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = ToolCall(index, call_id, name)
        return call

    def add(self, index: int, piece: str) -> ToolCall | None:
        """The call `piece` belongs to, with it appended (None: no such call)."""
        call = self._calls.get(index)
        if call is not None:
            call.arguments_text.add(piece)
        return call

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[ToolCall]:
        return iter([self._calls[index] for index in sorted(self._calls)])

    def clear(self) -> None:
        self._calls.clear()


def parse_arguments(text: str) -> dict[str, Any] | None:
    """A call's JSON arguments as an object: {} when there are none, None when
    they are not a JSON object (the model's mistake, which the caller keeps
    visibly in its surface's way)."""
    if not text.strip():
        return {}
    try:
        arguments = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return arguments if isinstance(arguments, dict) else None
