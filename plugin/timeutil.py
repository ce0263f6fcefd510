"""ISO-8601 parsing/formatting as CloudForet sends and reads it (UTC, ``Z``)."""
from __future__ import annotations

from datetime import datetime, timezone

from .errors import invalid


def parse_time(value: str, key: str) -> datetime:
    """``2026-11-28T00:00:00Z`` / ``...+00:00`` / ``2026-11-28`` -> aware UTC datetime."""
    if not value:
        raise invalid(f"{key} is required (ISO-8601, e.g. 2026-11-28T00:00:00Z)")
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"{key} = {value!r} is not an ISO-8601 time") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def iso_ms(ts_ms: int) -> str:
    dt = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"
