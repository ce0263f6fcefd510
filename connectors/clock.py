"""Time as the clients see it: the wall clock (token expiry), a monotonic clock
(retry budgets, rate limits) and sleeping. The clients take a ``Clock`` so a test
can hand them a fake one (tests/helpers.py ``FakeClock``) instead of waiting."""
from __future__ import annotations

import time


class Clock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = Clock()
