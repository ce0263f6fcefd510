"""One JSON text per value: compact, keys sorted, the same text for the same value.

Snapshots archive entities in it and the inventory sink fingerprints what it
writes with it, so both must never depend on dict order or on the encoder.
"""
from __future__ import annotations

import json
from typing import Any

import orjson


def canonical_json(value: Any) -> str:
    """orjson when its text means exactly what the standard encoder's would (it is
    several times faster, and archiving every page's entities is a large share of a
    run's CPU): orjson writes NaN and infinities as null and refuses integers beyond
    64 bits and non-string keys, so any text with a null in it, or a refusal, goes
    the standard way."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits, a key that is not a string
        text = None
    if text is not None and b"null" not in text:
        return text.decode()
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
