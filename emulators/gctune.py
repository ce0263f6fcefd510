"""The emulators' processes build and drop large answers (a page of 500 VMs or their
stats is some 200,000 dicts and lists): CPython's default GC thresholds (700, 10, 10)
then spend more time in the collector than in the answer. Same tuning as the
pipeline's workers (transforms/common/gc_tuning.py); the emulators import nothing of the
pipeline's."""
from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 10)


def relax_gc() -> None:
    gc.set_threshold(*(max(c, w) for c, w in zip(gc.get_threshold(), THRESHOLDS)))


def settle_gc() -> None:
    """Once serving: what start-up built (modules, the fleet, the stores) lives as long
    as the process, so full collections need not walk it again."""
    gc.collect()
    gc.freeze()
