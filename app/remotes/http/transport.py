"""One HTTP call to a remote, through urllib3's public API.

A direct route holds one connection pool for its remote's origin (its
connections pinned to the addresses the host policy approved:
app.remotes.http.pinning) and calls its `urlopen`; a proxied route calls
urllib3's ProxyManager's `urlopen`, which tunnels (https) or forwards (http)
through the outbound proxy. Neither follows a redirect, which would take
the request and its API key to a host the policy never saw. A whole answer
is read within the call: a body cut short is this call's failure. Every
failure is raised as the UpstreamError app.remotes.http.errors maps it to,
knowing whether the answer had begun.

One fast path may stand in (app.fast.kept_connection): a whole answer on a
connection the pool keeps open, written and read by http.client directly.
"""

import functools
import json
import time
from collections.abc import Mapping
from typing import Any

import requests.utils
from urllib3 import BaseHTTPResponse, HTTPHeaderDict, ProxyManager
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util import Timeout, parse_url

from app.fast import kept_connection
from app.remotes.http.errors import TRANSPORT_ERRORS, classify, upstream_error

# The headers every call carries unless the caller sets them: what the relay
# has always sent (requests' defaults, its User-Agent included), so that
# remotes and their firewalls see the same client as before.
DEFAULT_HEADERS: dict[str, str] = dict(requests.utils.default_headers())


@functools.lru_cache(maxsize=1024)
def path_of(url: str) -> str:
    """The request target of `url` (path and query), quoted as urllib3 quotes it."""
    return parse_url(url).request_uri


def framed(
    method: str, headers: Mapping[str, str], payload: Any = None
) -> tuple[dict[str, str], bytes | None]:
    """(headers, body) of a request carrying the JSON `payload`, if any."""
    body = None
    headers = {**DEFAULT_HEADERS, **headers}
    if payload is not None:
        # The bytes requests sent for json= (its default separators; NaN
        # cannot occur: request bodies refuse it).
        body = json.dumps(payload, allow_nan=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
    if body is not None or method not in ("GET", "HEAD"):
        headers["Content-Length"] = str(len(body or b""))
    return headers, body


class Answer:
    """A remote's answer: status, headers and the body, read whole into
    `content`, or (a stream) still to be read from `raw`, urllib3's response."""

    def __init__(
        self,
        status: int,
        reason: str | None,
        headers: HTTPHeaderDict,
        url: str,
        raw: BaseHTTPResponse | None = None,
        content: bytes = b"",
        elapsed: float = 0.0,
    ) -> None:
        self.status_code, self.reason, self.headers, self.url = status, reason, headers, url
        self.raw = raw
        self._content = content if raw is None else None
        self.elapsed = elapsed  # seconds until the answer's head had arrived

    @property
    def content(self) -> bytes:
        """The whole body (a stream's is read now, as urllib3 raises its failures)."""
        if self._content is None:
            self.read()
            assert self._content is not None
        return self._content

    def read(self) -> None:
        """Read the whole body (the connection then goes back to the pool)."""
        assert self.raw is not None
        self._content = self.raw.read(decode_content=True) or b""

    def close(self) -> None:
        """Give the connection back: to the pool if the body was read to its
        end, closed if not (what is left of it would be the next answer)."""
        if self.raw is None:
            return
        if self._content is None:
            self.raw.close()
        self.raw.release_conn()

    @property
    def text(self) -> str:
        """The body as text, in the charset the headers name (HTTP/1.1's
        ISO-8859-1 for text/* without one, else UTF-8), never failing."""
        kind, _, params = (self.headers.get("Content-Type") or "").partition(";")
        charset = None
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                charset = value.strip().strip("'\"")
        if charset is None and kind.strip().lower().startswith("text/"):
            charset = "ISO-8859-1"
        try:
            return self.content.decode(charset or "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError if it is not."""
        return json.loads(self.content)


class Route:
    """How calls to one remote origin go out."""

    proxied = False

    def __init__(self, host: str, timeout: tuple[float, float]) -> None:
        self.host = host  # the origin, as errors name it
        self.timeouts = timeout
        self.timeout = Timeout(connect=timeout[0], read=timeout[1])

    def failed(self, exc: BaseException, answered: bool) -> BaseException:
        """The UpstreamError for `exc`; `exc` itself if it is no failure of
        the remote or the way to it (a bug, or RemoteHostRefused)."""
        if classify(exc, answered) is None:
            return exc
        return upstream_error(exc, self.host, self.timeouts, answered)

    def _open(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> BaseHTTPResponse:
        raise NotImplementedError

    def call(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        payload: Any = None,
        stream: bool = False,
    ) -> Answer:
        """The answer to one request; its body read whole unless `stream`."""
        started = time.perf_counter()
        framed_headers, body = framed(method, headers, payload)
        try:
            raw = self._open(method, url, framed_headers, body)
        except TRANSPORT_ERRORS as exc:
            error = self.failed(exc, False)
            if error is exc:
                raise
            raise error from exc
        # urllib3's headers are case-insensitive, and need no copy.
        answer = Answer(
            raw.status, raw.reason, raw.headers, url, raw, elapsed=time.perf_counter() - started
        )
        if not stream:
            try:
                answer.read()
            except TRANSPORT_ERRORS as exc:
                error = self.failed(exc, True)
                if error is exc:
                    raise
                raise error from exc
        return answer


class Direct(Route):
    """Calls to one remote origin on its own (pinned) connection pool."""

    def __init__(
        self, host: str, timeout: tuple[float, float], pool: HTTPConnectionPool, fast: bool
    ) -> None:
        super().__init__(host, timeout)
        self.pool = pool
        self.kept = kept_connection.active(fast)

    def _open(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> BaseHTTPResponse:
        return self.pool.urlopen(
            method,
            path_of(url),
            body=body,
            headers=headers,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=False,
            retries=False,  # app.remotes.retry decides
            timeout=self.timeout,
            chunked=False,
        )

    def call(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        payload: Any = None,
        stream: bool = False,
    ) -> Answer:
        if self.kept and not stream:
            framed_headers, body = framed(method, headers, payload)
            kept = kept_connection.fetch(
                self.pool, method, path_of(url), framed_headers, body, self.timeout, self.failed
            )
            if kept is not None:
                status, reason, found, content, elapsed = kept
                return Answer(status, reason, found, url, content=content, elapsed=elapsed)
        return super().call(method, url, headers, payload, stream)


class Proxied(Route):
    """Calls to one remote origin through an outbound proxy."""

    proxied = True

    def __init__(self, host: str, timeout: tuple[float, float], manager: ProxyManager) -> None:
        super().__init__(host, timeout)
        self.manager = manager

    def _open(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> BaseHTTPResponse:
        return self.manager.urlopen(
            method,
            url,
            body=body,
            headers=headers,
            redirect=False,
            preload_content=False,
            decode_content=False,
            retries=False,
            timeout=self.timeout,
            chunked=False,
        )
