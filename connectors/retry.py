"""Exponential backoff with full jitter, bounded in attempts and in time."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from connectors.clock import SYSTEM_CLOCK, Clock

T = TypeVar("T")


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


class Backoff:
    """The retries of one logical operation: its attempts, its deadline, the wait
    between two attempts. Every retry loop of the collector runs on one: a unary
    call through ``call_with_retries``, a batch of writes or deletes directly."""

    def __init__(self, policy: RetryPolicy, sleep: Callable[[float], None] | None = None):
        self.policy = policy
        self.attempt = 1  # the attempt under way, counted from 1
        self.deadline = policy.deadline()  # on the policy's clock
        self._sleep = sleep or policy.sleep

    def wait(self, retry_after: float | None = None, on_retry: Callable[[float], None] | None = None) -> bool:
        """After a failed attempt: calls ``on_retry(delay)``, waits and returns True when one
        more may be made; returns False at once when the attempts or the time are spent."""
        delay = self.policy.delay(self.attempt, retry_after)
        if self.attempt >= self.policy.max_attempts or not self.deadline.allows(delay):
            return False
        if on_retry is not None:
            on_retry(delay)
        self._sleep(delay)
        self.attempt += 1
        return True


def call_with_retries(attempt: Callable[[], T], policy: RetryPolicy, transient: Callable[[Exception], bool],
                      retry_after: Callable[[Exception], float | None] = lambda err: None,
                      on_retry: Callable[[Exception, float], None] | None = None,
                      give_up: Callable[[Exception, int], Exception] | None = None,
                      sleep: Callable[[float], None] | None = None) -> T:
    """``attempt()`` until it returns, retried while what it raises is ``transient``.

    A failure that is not transient is raised as it is; when the attempts or the
    time are spent, the last failure is raised, or what ``give_up(err, attempts)``
    makes of it. ``retry_after(err)`` is the server's word on when to come back;
    ``on_retry(err, delay)`` is told of each retry before its wait."""
    backoff = Backoff(policy, sleep)
    while True:
        try:
            return attempt()
        except Exception as err:  # noqa: BLE001 - classified just below
            if not transient(err):
                raise
            last = err
        hook = None if on_retry is None else (lambda delay: on_retry(last, delay))
        if not backoff.wait(retry_after(last), hook):
            raise (give_up(last, backoff.attempt) if give_up is not None else last) from None
