"""Fast path: the request's log line written to the JSON handler's stream directly.

What access_log.info("request", extra={"fields": fields}) writes through the
handler telemetry.configure_logging installs, without logging's way (a
LogRecord, the logger and handler filters, the handler's lock taken twice),
a measurable share of a relayed chat request's CPU (ops/bench/ab.py). Only
for the set-up it knows: any other (a handler, filter or formatter set
since, a level above INFO) gets its record through logging, as the caller
does when this path is off. Uses logging's public attributes only, but
reproduces what StreamHandler.emit writes: gated on the Python it was
tested with.
"""

import logging
import time
from typing import Any

from app import fast

TESTED_WITH = {"python": "3.11"}
SUPPORTED = fast.tested(TESTED_WITH)


def active() -> bool:
    """Whether request lines go this way (RELAY_FAST_PATHS, as create_app set it)."""
    return SUPPORTED and fast.wanted()


def write(
    logger: logging.Logger,
    handler: logging.StreamHandler[Any] | None,
    formatter_class: type[logging.Formatter],
    fields: dict[str, Any],
) -> bool:
    """Write `logger`'s "request" line with `fields` to `handler`'s stream,
    as `formatter_class` would format the record; False (nothing written)
    when `handler` is not the only one the line would reach, unfiltered."""
    parent = logger.parent
    if (
        handler is None
        or logger.handlers
        or logger.filters
        or handler.filters
        or handler.level > logging.INFO
        or parent is None
        or parent.handlers != [handler]
        or parent.propagate
        or type(handler.formatter) is not formatter_class
    ):
        return False
    formatter: Any = handler.formatter
    line = {
        "time": formatter.stamp(time.time()),
        "level": "INFO",
        "logger": logger.name,
        "message": "request",
    }
    line.update(fields)
    try:
        # One greenlet at a time: nothing can interleave with this write
        # (a blocking write to stderr does not yield to the hub).
        handler.stream.write(formatter.encode(line) + handler.terminator)
        handler.stream.flush()
    except Exception:
        handler.handleError(logging.makeLogRecord({"msg": "request", "args": None}))
    return True
