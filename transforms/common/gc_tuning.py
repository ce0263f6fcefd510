"""CPython's cyclic garbage collector, tuned for workers that parse megabytes of JSON.

A page of 500 VMs, or of their stats, is 2-3 MB of JSON: some 200,000 dicts and
lists made at once and freed soon after. At CPython's default thresholds
(700, 10, 10) that sets off hundreds of young collections per page and, as the
worker's heap grows, full collections that walk every object it holds. Measured
on a 10k-VM read (benchmarks/README.md): 6.9 s of CPU inside JSON parsing, of
which 0.6 s was parsing and the rest the collector. Higher thresholds still
collect every cycle, in fewer and larger passes.
"""
from __future__ import annotations

import gc
import threading

THRESHOLDS = (50_000, 20, 10)
_lock = threading.Lock()


def tune_gc() -> None:
    """Raises this process's thresholds to THRESHOLDS (never lowers one set higher).

    Called from ``setup()`` of the DoFns that allocate most, so that it holds in
    every worker process (local multi_processing, Flink, Dataflow), not just the
    launcher. A process that turned the collector off keeps it off.
    """
    with _lock:
        current = gc.get_threshold()
        wanted = tuple(max(c, w) for c, w in zip(current, THRESHOLDS))
        if wanted != current:
            gc.set_threshold(*wanted)
