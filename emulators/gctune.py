"""The emulators' processes build and drop large answers (a page of 500 VMs or their
stats is some 200,000 dicts and lists): CPython's default GC thresholds (700, 10, 10)
then spend more time in the collector than in the answer. Same tuning as the
pipeline's workers (transforms/gc_tuning.py); the emulators import nothing of the
pipeline's."""
from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 10)


def relax_gc() -> None:
    gc.set_threshold(*(max(c, w) for c, w in zip(gc.get_threshold(), THRESHOLDS)))
