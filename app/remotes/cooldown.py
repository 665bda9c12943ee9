"""Cool-down: a remote that keeps failing is skipped for a while.

After RELAY_COOLDOWN_FAILURES consecutive failures (each already retried),
a remote is skipped for RELAY_COOLDOWN_SECONDS, so that a dead region does
not cost every request its timeouts before a fallback serves it. Then one
request tries it again: a success ends the cool-down, a failure starts
another. Per worker, in memory: each worker learns on its own, which costs
at most RELAY_COOLDOWN_FAILURES failed requests per worker.
"""

import time

from app.observability import metrics


class Cooldown:
    def __init__(self, failures, seconds, clock=time.monotonic):
        self._failures = failures
        self._seconds = seconds
        self._clock = clock
        self._counts = {}  # target -> consecutive failures
        self._until = {}  # target -> end of its cool-down (clock time)

    def remaining(self, target):
        """Seconds `target` is still to be skipped (0: it may be called)."""
        until = self._until.get(target)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            # Over: the next call is the trial; one more failure restarts it.
            del self._until[target]
            self._counts[target] = self._failures - 1
            self._publish()
            return 0.0
        return left

    def cooling(self):
        """(target, seconds left) of each remote this worker skips now."""
        now = self._clock()
        return sorted((t, until - now) for t, until in self._until.items() if until > now)

    def failed(self, target):
        count = self._counts.get(target, 0) + 1
        self._counts[target] = count
        if count >= self._failures:
            self._until[target] = self._clock() + self._seconds
            self._publish()

    def succeeded(self, target):
        self._counts.pop(target, None)
        if self._until.pop(target, None) is not None:
            self._publish()

    def _publish(self):
        metrics.REMOTES_COOLING_DOWN.set(len(self._until))
