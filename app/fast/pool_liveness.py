"""Fast path: whether a pooled connection is still open, asked without gevent's hub.

urllib3 asks a pooled connection `is_connected` before reusing it (is the
socket readable at once? one the remote closed is). Under gevent, urllib3's
wait_for_read goes through gevent's poll, which arms watchers and a timer on
the hub even for a zero timeout: a measurable share of a relayed
non-streamed request's CPU. A zero timeout never blocks, so the poll system
call itself gives the same answer. Gated on the urllib3 that asks, and the
gevent whose original poll it takes.
"""

import select
from typing import Any

from gevent import monkey

from app import fast

TESTED_WITH = {"python": "3.11", "urllib3": "2.8.0", "gevent": "26.9.0"}
SUPPORTED = fast.tested(TESTED_WITH)

# The system call, not gevent's replacement, whether or not gevent patched select.
_poll = monkey.get_original("select", "poll")


def active(wanted: bool) -> bool:
    """Whether pooled connections should be checked by `Liveness` (RELAY_FAST_PATHS: `wanted`)."""
    return SUPPORTED and wanted


class Liveness:
    """Mixin for urllib3's HTTPConnection and HTTPSConnection."""

    sock: Any

    @property
    def is_connected(self) -> bool:
        """urllib3's own test, made with the poll system call."""
        if self.sock is None:
            return False
        poller = _poll()
        poller.register(self.sock, select.POLLIN)
        return not poller.poll(0)
