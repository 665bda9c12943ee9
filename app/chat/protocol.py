"""What every stream converter is, and what it is given: an id factory and a clock."""

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from app.chat.common import new_id

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)

# prefix -> a fresh id ("msg" -> "msg_..."); new_id by default, a counter in tests.
Ids = Callable[[str], str]


class Clock(Protocol):
    """Wall-clock seconds (timestamps clients see) and a monotonic
    nanosecond count (durations)."""

    def time(self) -> float: ...

    def monotonic_ns(self) -> int: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


SYSTEM_CLOCK = SystemClock()
DEFAULT_IDS: Ids = new_id


class StreamConverter(Protocol[In, Out]):
    """Turns one answer's remote items into a surface's items, for
    app.web.streaming.relay (and, fed one whole answer, for the surface's
    non-streaming view).

    The contract:
    - One converter per answer. relay() calls feed(item) for each item of
      the remote, in order, then exactly one of finish() (the remote's stream
      ended) or fail(message) (it broke; `message` is for the client and
      names the remote). Nothing is called after those.
    - Each returns the client's items, in order, possibly none: objects the
      surface frames (an NDJSON line, SSE data or a named SSE event) or a
      string sent as it is (`[DONE]`).
    - finish() ends the answer the surface's way, or, when the remote ended
      before saying why it stopped, returns fail(INCOMPLETE).
    - fail() ends it with the surface's in-band error; items opened so far
      are closed first where the surface's grammar wants it.
    - Items are checked before they get here (Chunks, from app.chat.chunks;
      a remote Ollama's lines are objects): feed() raises on nothing a remote
      can send. An exception from a converter is a bug, which relay() turns
      into the in-band "internal error".
    - `usage`: the answer's chat usage (prompt_tokens, completion_tokens:
      non-negative ints), once the remote reported it, else None; relay()
      reads it after the last call, for telemetry and accounting.
    - Pure: no I/O. Ids and time come from the `ids` and `clock` a converter
      is made with (new_id and the system clock by default), so that tests
      get the same items every run.
    """

    @property
    def usage(self) -> dict[str, Any] | None: ...

    def feed(self, item: In, /) -> Sequence[Out]: ...

    def finish(self) -> Sequence[Out]: ...

    def fail(self, message: str, /) -> Sequence[Out]: ...
