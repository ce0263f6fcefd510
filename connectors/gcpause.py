"""Keep CPython's cyclic collector off the trees parsed from large JSON answers.

Parsing builds a tree of fresh dicts and lists that cannot hold a cycle; the
collector walking them is work for nothing, first while they are built and
then in every young collection while the page is handed on. Measured on a
2.4 MB stats page (500 VMs) in a process holding a million other objects: 63 ms
per page at the thresholds of transforms/gc_tuning, 12 ms paused. In a 10k-VM
run the young collection right after each pause still took 0.9 s of its
1.5 s of parsing: the end of a pause therefore moves what is alive into the
collector's permanent generation (``gc.freeze``), where it is freed as usual
when no longer referenced but never walked. ``thaw()`` hands the frozen objects
back to the collector; the reader calls it at the end of each bundle, so
cycles frozen meanwhile are collected later, not leaked.

Pauses nest across threads and leave a collector that was off, off.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_resume = False


@contextmanager
def collector_paused() -> Iterator[None]:
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.freeze()
                gc.enable()


def thaw() -> None:
    """Everything frozen by a pause goes back to the collector's oldest generation."""
    gc.unfreeze()
