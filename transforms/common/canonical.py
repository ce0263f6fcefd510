"""One JSON text per value: compact, keys sorted, the same text for the same value.

Snapshots archive entities in it and the inventory sink fingerprints what it
writes with it, so both must never depend on dict order or on the encoder.
"""
from __future__ import annotations

import json
import math
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS
_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1


def canonical_json(value: Any) -> str:
    """orjson's text (it is several times faster than the standard encoder, and archiving
    every page's entities is a large share of a run's CPU), whatever the value holds.

    What orjson cannot write as the standard encoder would read it back (NaN and the
    infinities, which it writes as null; integers beyond 64 bits, keys that are not
    strings and lone surrogates, which it refuses) is written by ``_encode``, which
    writes everything else exactly as orjson does: one text for one value."""
    try:
        text = orjson.dumps(value, option=_SORTED)
    except TypeError:
        return _encode(value)
    if b"null" in text and _has_non_finite(value):  # a null may stand for a NaN
        return _encode(value)
    return text.decode()


def _has_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is float:
            if not math.isfinite(v):
                return True
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, float) and not math.isfinite(v):
            return True
    return False


def _key(k: Any) -> str:
    """A key as the standard encoder makes it a string."""
    if isinstance(k, str):
        return k
    if k is True or k is False or k is None:
        return json.dumps(k)
    if isinstance(k, float):
        return _encode(k)
    if isinstance(k, int):
        return int.__repr__(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def _encode(v: Any) -> str:
    """The slow way, for the few values orjson alone cannot write: its text for the rest."""
    if v is None or v is True or v is False:
        return orjson.dumps(v).decode()
    if isinstance(v, str):
        try:
            return orjson.dumps(v).decode()
        except TypeError:  # a lone surrogate: only an escape can write it
            return json.dumps(str(v))
    if isinstance(v, int):
        return orjson.dumps(int(v)).decode() if _INT64_MIN <= v <= _UINT64_MAX else int.__repr__(v)
    if isinstance(v, float):
        if math.isfinite(v):
            return orjson.dumps(float(v)).decode()
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")  # as the standard encoder
    if isinstance(v, dict):
        items = sorted((_key(k), item) for k, item in v.items())
        return "{" + ",".join(f"{_encode(k)}:{_encode(item)}" for k, item in items) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(map(_encode, v)) + "]"
    return orjson.dumps(v, option=_SORTED).decode()
