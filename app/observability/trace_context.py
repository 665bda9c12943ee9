"""The trace a request belongs to, for the request log: the one place that
knows where its id comes from. For now, the caller's W3C `traceparent`
(version-traceid-parentid-flags); the OpenTelemetry tracing, once it runs,
gives the id of the trace the relay's own span joined instead."""

import re

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_INVALID = "0" * 32


def trace_id(headers):
    """The trace id (32 lowercase hex digits) of the caller's traceparent, or None."""
    found = _TRACEPARENT.match(headers.get("traceparent", "").strip())
    if found is None or found.group(1) == _INVALID:
        return None
    return found.group(1)
