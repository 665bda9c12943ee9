"""Failed console sign-ins, counted per client address in this worker:
past the limit an address waits until its oldest failure leaves the window."""

import collections
import time

LIMIT = 10
WINDOW_SECONDS = 600.0
# Addresses remembered at most: a flood from many addresses must not grow
# the worker's memory without bound (the oldest are forgotten first).
MAX_ADDRESSES = 10000


class FailedSignIns:
    def __init__(self, limit=LIMIT, window=WINDOW_SECONDS, clock=time.monotonic):
        self._limit = limit
        self._window = window
        self._clock = clock
        self._failures = collections.OrderedDict()  # address -> deque of times

    def _recent(self, address):
        times = self._failures.get(address)
        if times is None:
            return None
        cutoff = self._clock() - self._window
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def wait(self, address):
        """Seconds `address` must wait before it may try again (0: it may)."""
        times = self._recent(address)
        if not times or len(times) < self._limit:
            return 0.0
        return max(1.0, times[0] + self._window - self._clock())

    def failed(self, address):
        times = self._recent(address)
        if times is None:
            times = self._failures[address] = collections.deque()
        times.append(self._clock())
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)
