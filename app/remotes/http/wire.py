"""What a direct connection to a remote does less of than urllib3's own.

Per call, urllib3 (under gevent) polls a pooled connection through the hub,
and http.client parses the response head with the email package: each about
7% of the worker's CPU for a relayed non-streamed request (ops/bench's fast
upstream, alternating runs). The pinned connections of app.remotes.http.pinning
mix `Lean` in to do the same work more cheaply; calls through an outbound
proxy keep urllib3's classes.
"""

import select

from gevent import monkey

from app.remotes.http.heads import Response

# The system call, not gevent's replacement, whether or not gevent patched select.
_poll = monkey.get_original("select", "poll")


class Lean:
    """Mixin for urllib3's HTTPConnection and HTTPSConnection."""

    response_class = Response  # the head parsed without the email package

    @property
    def is_connected(self):
        """urllib3's own test (is the socket readable at once? a pooled
        connection the remote closed is), made with the poll system call:
        gevent's poll, which urllib3 would use, arms watchers and a timer on
        the hub even for a zero timeout, about 7% of a non-streamed request's
        CPU. A zero timeout never blocks, so the hub is not needed."""
        if self.sock is None:
            return False
        poller = _poll()
        poller.register(self.sock, select.POLLIN)
        return not poller.poll(0)
