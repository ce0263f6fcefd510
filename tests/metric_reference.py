"""The reference conversion of a VM's stats to metric points, one point at a time.

The product computes them in bulk (transforms/stages/metrics.py PointColumns); the
tests check its points against these, written the straightforward way.
"""
from __future__ import annotations

from transforms.stages.metrics import METRICS


def to_millionths(value: float) -> float:
    """A value to the nearest millionth, by scaling: the same double as numpy's
    rint over arrays (round(value, 6) decides by the exact decimal and can differ
    in the last digit). Beyond 1e15 a double has no millionths to round."""
    return value if value >= 1e15 else round(value * 1e6) / 1e6


def metric_columns(series: dict, interval_s: int, start_ms: int | None = None,
                   end_ms: int | None = None) -> dict[str, list]:
    """A VM's points as columns (metric, timestamp_ms, value, unit).

    Only points inside the run's window are kept, so a replay or a retry
    never emits points the run did not own.
    """
    cols: dict[str, list] = {"metric": [], "timestamp_ms": [], "value": [], "unit": []}
    lo = start_ms if start_ms is not None else -(1 << 62)
    hi = end_ms if end_ms is not None else 1 << 62
    for metric, (attr, unit, convert) in METRICS.items():
        for t_usec, value in series.get(attr, ()):
            ts_ms = t_usec // 1000
            if lo <= ts_ms < hi:
                cols["metric"].append(metric)
                cols["timestamp_ms"].append(ts_ms)
                cols["value"].append(to_millionths(convert(value, interval_s)))
                cols["unit"].append(unit)
    return cols


def metric_points(account: str, vm_uuid: str, series: dict, interval_s: int,
                  region_code: str = "", start_ms: int | None = None, end_ms: int | None = None) -> list[dict]:
    """One dict per point (the readable form of :func:`metric_columns`)."""
    cols = metric_columns(series, interval_s, start_ms, end_ms)
    return [{"account": account, "resource_id": vm_uuid, "region_code": region_code, "metric": m,
             "timestamp_ms": t, "value": v, "unit": u}
            for m, t, v, u in zip(cols["metric"], cols["timestamp_ms"], cols["value"], cols["unit"])]
