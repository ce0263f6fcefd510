"""A progress line during long runs: pages read and resources written, per account.

Each worker process keeps its own tallies and logs at most one line every
``INTERVAL_S`` (on a distributed runner each worker reports its share; the
Beam counters printed at the end are the exact totals).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

log = logging.getLogger("progress")
INTERVAL_S = 10.0

_lock = threading.Lock()
_tallies: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_last = [time.monotonic()]


def add(account: str, what: str, n: int = 1) -> None:
    with _lock:
        _tallies[account][what] += n
        now = time.monotonic()
        if now - _last[0] < INTERVAL_S:
            return
        _last[0] = now
        line = "; ".join(f"{a}: " + ", ".join(f"{v} {k}" for k, v in sorted(t.items()))
                         for a, t in sorted(_tallies.items()))
    log.info("progress: %s", line)
