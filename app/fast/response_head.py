"""Fast path: response heads from remotes, parsed without the email package.

http.client hands a response's header lines to email.parser, which runs
them through its feed parser and header policy: for a head of three headers,
about 7% of the worker's CPU for a relayed non-streamed request (alternating
runs against the fast upstream of ops/bench, 953 -> 875 us). When
every line is `name: value`, the same HTTPMessage can be built in a loop.
Anything else (a folded line, a line without a colon) goes to the email
parser as http.client would send it, so that odd heads read as they did.

Direct connections (app.remotes.http.pinning) answer with `Response` when
`active()`; otherwise, and through an outbound proxy, with http.client's own.
`Response.begin` is a copy of CPython 3.11's, whose private helpers it
calls: gated on that Python minor, and on the urllib3 that reads its headers.
"""

import email.parser
import http.client
import re
from typing import BinaryIO

from app import fast

TESTED_WITH = {"python": "3.11", "urllib3": "2.8.0"}
SUPPORTED = fast.tested(TESTED_WITH) and all(
    hasattr(http.client.HTTPResponse, name) for name in ("_read_status", "_check_close")
)

# A header line as the email parser takes one: a name of printable ASCII
# other than the colon, then the colon. (A line that starts with a space or
# a tab continues the one before: the email parser folds those.)
_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
# http.client's limits on a head (its _MAXLINE and _MAXHEADERS).
MAX_LINE = 65536
MAX_HEADERS = 100


def active(wanted: bool) -> bool:
    """Whether connections should answer with `Response` (RELAY_FAST_PATHS: `wanted`)."""
    return SUPPORTED and wanted


def read_head(fp: BinaryIO) -> list[bytes]:
    """The header lines of a response from `fp`, its ending line last
    (b"\\r\\n", b"\\n", or b"" where the stream ended), as http.client reads them."""
    lines = []
    while True:
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return lines


def parse_headers(lines: list[bytes]) -> http.client.HTTPMessage:
    """The HTTPMessage http.client.parse_headers builds from `lines`."""
    message = http.client.HTTPMessage()
    for line in lines[:-1]:
        field = _FIELD.match(line)
        if field is None:
            parsed = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(
                b"".join(lines).decode("iso-8859-1")
            )
            assert isinstance(parsed, http.client.HTTPMessage)
            return parsed
        # What email's compat32 policy keeps: the name as sent, the value
        # without the blanks before it and the line ending after it.
        name = line[: field.end() - 1].decode("iso-8859-1")
        value = line[field.end() :].decode("iso-8859-1").lstrip(" \t").rstrip("\r\n")
        message.set_raw(name, value)
    message.set_payload("")  # the email parser's: the (empty) rest after the head
    return message


class Response(http.client.HTTPResponse):
    """http.client's response, its head parsed by `parse_headers`."""

    def begin(self) -> None:
        # http.client.HTTPResponse.begin (Python 3.11), but for the
        # line that parses the headers.
        if self.headers is not None:
            return  # already begun
        while True:  # until a final (non-100) status
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            read_head(self.fp)  # a 100 Continue's head: skipped
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = parse_headers(read_head(self.fp))
        encoding = self.headers.get("transfer-encoding")
        self.chunked = bool(encoding) and encoding.lower() == "chunked"
        if self.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()
        # Content-Length is ignored when chunked (RFC 9112, 6.3), and when
        # it is not a number or negative.
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                pass
            else:
                if self.length < 0:
                    self.length = None
        if (
            status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
            or 100 <= status < 200
            or self._method == "HEAD"
        ):
            self.length = 0
        # Neither chunked nor a length on a connection kept open: the body
        # ends when the remote closes it.
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True


class LeanHeads:
    """Mixin for urllib3's connection classes: answers begin with `Response`."""

    response_class = Response
