"""Exponential backoff with full jitter, bounded in attempts and in time."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from connectors.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 10.0
    max_total_s: float = 120.0
    clock: Clock = field(default=SYSTEM_CLOCK, compare=False, repr=False)  # waits between attempts

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before attempt ``attempt + 1`` (attempt counts from 1)."""
        cap = min(self.max_backoff_s, self.initial_backoff_s * (2 ** (attempt - 1)))
        jittered = random.uniform(0, cap)
        if retry_after is not None:
            # The server said when to come back: never earlier than that.
            return max(retry_after, jittered)
        return jittered

    def deadline(self) -> "Deadline":
        """The time budget of one logical call, starting now."""
        return Deadline(self.max_total_s, self.clock)

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)


class Deadline:
    """Tracks the time budget of one logical call across its retries."""

    def __init__(self, total_s: float, clock: Clock = SYSTEM_CLOCK):
        self.clock = clock
        self._end = clock.monotonic() + total_s

    def remaining(self) -> float:
        return self._end - self.clock.monotonic()

    def allows(self, delay_s: float) -> bool:
        return self.remaining() > delay_s
