"""A thread-safe token bucket: keeps one Prism Central under its request budget.

Prism Central answers 429 above roughly 30-80 requests/s; staying under a
configured rate is cheaper than being throttled and retrying.
"""
from __future__ import annotations

import threading

from connectors.clock import SYSTEM_CLOCK, Clock


class RateLimiter:
    """Smooth by default (a burst of one): never more than ``rate`` + 1
    requests in any one-second window, from the first second on."""

    def __init__(self, rate_per_s: float, burst: int = 1, clock: Clock = SYSTEM_CLOCK):
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        self.rate = float(rate_per_s)
        self.capacity = float(max(1, burst))
        self.clock = clock
        self._tokens = self.capacity
        self._last = clock.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Blocks until a request may be sent; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0 - 1e-9:  # a float refill may fall an ulp short: never spin on it
                    self._tokens -= 1.0
                    return waited
                need = (1.0 - self._tokens) / self.rate
            self.clock.sleep(need)
            waited += need

    def defer(self, seconds: float) -> None:
        """No request before ``seconds`` from now (the server said its budget is spent)."""
        with self._lock:
            now = self.clock.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens = min(self._tokens, 1.0 - seconds * self.rate)


_shared: dict[tuple[str, float], RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(key: str, rate_per_s: float) -> RateLimiter:
    """One limiter per Prism Central per process, whichever DoFn asks: the
    budget is the Prism Central's, not each client's."""
    with _shared_lock:
        limiter = _shared.get((key, rate_per_s))
        if limiter is None:
            limiter = _shared[(key, rate_per_s)] = RateLimiter(rate_per_s)
        return limiter
