"""Retrying a call to a remote, before anything has reached the client.

Providers fail all the time: 429 when a quota is hit, 500-504 during
incidents, connections that are refused or reset. A call that failed that
way, before the relay sent the client a byte, is sent again: up to
RELAY_RETRIES more times, after an exponential backoff with jitter, or
after the remote's own Retry-After when it asks for one. All waits of one
request add up to at most RELAY_RETRY_MAX_WAIT: a 429 asking for longer
goes to the client at once, with its Retry-After. Other 4xx are the
request's fault and never retried; a stream that breaks after its first
byte is not retried either (the client has it already).

A 500 is retried only when it may have come before the remote generated:
one whose error speaks of the model's output (llama.cpp's "The model
produced output that does not match the expected ... format", OpenAI's "The
model produced invalid content", a tool call that failed to parse) came
after a whole generation, and at temperature 0 the next would fail the
same way: sent again, one call would cost three generations (nine behind
an SDK that retries too). The rule reads the error, never the time taken:
a slow remote and a busy one look the same.
"""

import datetime
import email.utils
import random
import re
import time
from collections.abc import Callable, Mapping

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# UpstreamError codes (app.remotes.http.errors) of calls that may
# never have reached the remote's application.
RETRY_CODES = frozenset(
    {
        "connect_timeout",
        "connection_refused",
        "unreachable",
        "dns_error",
        "proxy_error",
        "connection_reset",
    }
)
# An error message about the model's output, as the inference servers word
# it: the model produced/generated something, or output, a tool call or a
# completion that is invalid, malformed or failed to parse (either order).
_OUTPUT = r"(?:output|tool[ _-]?calls?|function[ _-]?calls?|completion|generation|response format)"
_FAULT = r"(?:pars(?:e|ed|ing)|invalid|malformed|does not match|did not match)"
_ABOUT_THE_OUTPUT = re.compile(
    rf"\bmodel(?:'s)?\s+(?:produced|generated|output)\b"
    rf"|\b{_FAULT}\b[^.\n]*\b{_OUTPUT}\b"
    rf"|\b{_OUTPUT}\b[^.\n]*\b{_FAULT}\b",
    re.IGNORECASE,
)
_BASE_DELAY = 0.25
_POLL = 0.1


def about_the_output(message: str) -> bool:
    """Whether a remote's error message says the model's output failed."""
    return bool(_ABOUT_THE_OUTPUT.search(message))


def retried_status(status: int, message: Callable[[], str]) -> bool:
    """Whether an answer with `status` may be sent again; `message` gives
    its error text (read only for a 500)."""
    if status not in RETRY_STATUSES:
        return False
    return status != 500 or not about_the_output(message())


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), or None."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (moment - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


class Retries:
    """The retry budget of one request to a remote."""

    def __init__(
        self,
        retries: int,
        max_wait: float,
        client_gone: Callable[[], bool] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._left = retries
        self._budget = max_wait
        self._client_gone = client_gone or (lambda: False)
        self._rng = rng
        self.attempts = 1

    def wait_for(self, asked: float | None = None) -> float | None:
        """How long to wait before the next attempt, or None to give up.
        `asked`: the remote's Retry-After in seconds, if it sent one."""
        if self._left <= 0:
            return None
        if asked is None:
            # Equal jitter: at least half the backoff, so retries of many
            # clients spread out without any of them retrying at once.
            backoff = _BASE_DELAY * 2 ** (self.attempts - 1)
            asked = backoff / 2 + self._rng() * backoff / 2
        if asked > self._budget:
            return None
        return asked

    def sleep(self, seconds: float) -> bool:
        """Wait before the next attempt; False if the client left meanwhile."""
        self._left -= 1
        self._budget -= seconds
        deadline = time.monotonic() + seconds
        while True:
            if self._client_gone():
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.attempts += 1
                return True
            time.sleep(min(_POLL, remaining))
