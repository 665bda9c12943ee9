"""Converters fed as the relay feeds them, for unit tests: each raw chunk is
first read by the stream's own ChunkReader, as app.remotes.openai reads it."""

from app.chat.chunks import ChunkReader
from app.chat.deltas import Chunk


class Reading:
    """`converter`, whose feed() takes a remote's raw chunk (or a Chunk read already)."""

    def __init__(self, converter):
        self.converter = converter
        self.reader = ChunkReader()

    def feed(self, item):
        if not isinstance(item, Chunk):
            item = self.reader.read(item)
        return self.converter.feed(item)

    def __getattr__(self, name):
        return getattr(self.converter, name)


class FixedClock:
    """A clock that reads the same every run: wall time fixed, monotonic
    nanoseconds advancing by `step` on every read."""

    def __init__(self, now=1767225600.0, step=1000):
        self.now, self.step, self.ns = now, step, 0

    def time(self):
        return self.now

    def monotonic_ns(self):
        self.ns += self.step
        return self.ns


def counting_ids():
    """An id factory giving prefix_1, prefix_2, ... (one count for all prefixes)."""
    count = 0

    def ids(prefix):
        nonlocal count
        count += 1
        return f"{prefix}_{count}"

    return ids


def fed(converter, *raw_chunks):
    """Every item `converter` gives for `raw_chunks` (read by one reader), then finish()."""
    reading = Reading(converter)
    out = []
    for raw in raw_chunks:
        out += reading.feed(raw)
    return out + converter.finish()
