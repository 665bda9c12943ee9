"""Lines and Server-Sent Events from a remote's streamed body: linear time, bounded size.

The relay reads SSE itself instead of through sseclient-py. sseclient-py grows
each event with `bytes +=` for every piece that arrives, so a long line that
comes in many pieces costs time quadratic in its length, all of it on the
worker's one thread (a gevent worker answers nobody else meanwhile), and
nothing bounds a line or an event. Feeding it line-bounded input would mean splitting the lines
here anyway, and its per-event concatenation (quadratic again for an event of
many `data:` lines) and its UnicodeDecodeError from deep inside (a remote's
fault that reads like ours) would remain. What SSE needs to be for
Chat Completions is small: `data:` lines joined with "\\n", `event:`, comments,
dispatch on a blank line; the caller handles `[DONE]`.

requests' iter_lines, which read NDJSON from Ollama remotes, is no better: it
prepends the pending part of a line to every new piece and splits it all again.
`lines()` below serves both formats: each byte is scanned once, and at most
`limit` bytes of an unfinished line are held (plus the piece being read).

Nothing here knows HTTP or the remote: errors are StreamFormatError, which the
caller (app.remotes.streams) turns into an UpstreamError naming the host.
"""

_BOM = b"\xef\xbb\xbf"


class StreamFormatError(ValueError):
    """The remote's stream cannot be read as the format it claims."""


class LineTooLong(StreamFormatError):
    """A line (or, in SSE, one event's data) longer than the limit."""

    what = "line"

    def __init__(self, limit):
        super().__init__(f"a stream {self.what} over {limit} bytes")
        self.limit = limit


class EventTooLong(LineTooLong):
    what = "event"


class NotUTF8(StreamFormatError):
    """A line that is not valid UTF-8."""


def decode(line):
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise NotUTF8("a stream item that is not valid UTF-8") from None


def lines(pieces, limit, sse=False):
    """The lines (bytes, without their end of line) in an iterable of byte
    pieces cut anywhere. SSE ends a line at CRLF, LF or a lone CR; NDJSON at
    LF (a CR before it is JSON whitespace). A last line without an end of
    line is yielded at the end. A line longer than `limit` bytes raises
    LineTooLong as soon as that many bytes of it have arrived."""
    partial = bytearray()  # the start of a line that began in an earlier piece
    after_cr = False
    for piece in pieces:
        if sse:
            if after_cr and piece[:1] == b"\n":
                piece = piece[1:]  # the LF of a CRLF split between two pieces
            after_cr = piece[-1:] == b"\r"
            if b"\r" in piece:
                piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        found = piece.split(b"\n")  # in C: each byte looked at once
        rest = found.pop()
        if found:
            if partial:
                if len(partial) + len(found[0]) > limit:
                    raise LineTooLong(limit)
                partial += found[0]
                found[0] = bytes(partial)
                partial.clear()
            for line in found:
                if len(line) > limit:
                    raise LineTooLong(limit)
                yield line
        if rest:
            if len(partial) + len(rest) > limit:
                raise LineTooLong(limit)
            partial += rest
    if partial:
        yield bytes(partial)


def events(lines, limit):
    """(type, data) of each event in SSE `lines`: `data:` values joined with
    "\\n", type "message" unless an `event:` line names one. Comments, `id:`,
    `retry:` and unknown fields are skipped, and so are events with empty
    data. An event left open when the stream ends is dispatched too (as
    sseclient-py did: some providers end without the last blank line)."""
    data, size, kind = [], 0, ""
    first = True
    for line in lines:
        if first:
            first = False
            if line.startswith(_BOM):
                line = line[len(_BOM) :]
        if not line:
            if data:
                text = "\n".join(data)
                if text.strip():
                    yield kind or "message", text
            data, size, kind = [], 0, ""
            continue
        if line.startswith(b":"):
            continue  # a comment (keep-alive): not even decoded
        name, _, value = decode(line).partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            size += len(line) + 1
            if size > limit:
                raise EventTooLong(limit)
            data.append(value)
        elif name == "event":
            kind = value
    if data:
        text = "\n".join(data)
        if text.strip():
            yield kind or "message", text
