"""One JSON text per value: compact, keys sorted, the same text for the same value.

Snapshots archive entities in it and the inventory sink fingerprints what it
writes with it, so both must never depend on dict order or on the encoder.
"""
from __future__ import annotations

import json
import re
from typing import Any

import orjson

# A number with a fraction or an exponent, as orjson writes it after '[', ':' or ','. orjson and
# the standard encoder write some floats differently (1e-05 / 0.00001), so text with one goes the
# standard way. It may also match inside a string (a time's ":05.2"): that only costs speed.
_FLOAT = re.compile(rb"[\[:,]-?[0-9]+[.eE]")
_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode
_ENCODE_ASCII = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def canonical_json(value: Any) -> str:
    """The standard encoder's text with non-ASCII characters as they are (``ensure_ascii=False``),
    whatever the value holds. orjson writes it when its text is that one (it is several times
    faster, and archiving every page's entities is a large share of a run's CPU): when it has
    no float and no null (orjson writes NaN and infinities as null) and orjson takes the value
    (it refuses integers beyond 64 bits, keys that are not strings and lone surrogates)."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits, a key that is not a string, a lone surrogate
        text = _ENCODE(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _ENCODE_ASCII(value)  # a lone surrogate can only be written escaped
        return text
    if b"null" not in text and _FLOAT.search(text) is None:
        return text.decode()
    return _ENCODE(value)
