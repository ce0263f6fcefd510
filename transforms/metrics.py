"""ExtractMetrics: Prism VM stats -> metric points with units.

Prism's groups API answers counters per sampling interval in its own units
(ppm, kB/s, bytes per interval); CloudForet wants named metrics with units.
"""
from __future__ import annotations

from itertools import repeat
from typing import Any, Callable, Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from transforms.prism_read import TIME_MAX, TIME_MIN, parse_stats_entity

# metric -> (Prism attribute, unit, conversion(value, interval_s))
METRICS: dict[str, tuple[str, str, Callable[[float, int], float]]] = {
    "cpu.utilization": ("hypervisor_cpu_usage_ppm", "Percent", lambda v, _: v / 10_000),
    "memory.utilization": ("memory_usage_ppm", "Percent", lambda v, _: v / 10_000),
    "disk.read_iops": ("controller_num_read_iops", "Count/Second", lambda v, _: v),
    "disk.write_iops": ("controller_num_write_iops", "Count/Second", lambda v, _: v),
    "disk.read_throughput": ("controller_read_io_bandwidth_kBps", "Bytes/Second", lambda v, _: v * 1024),
    "disk.write_throughput": ("controller_write_io_bandwidth_kBps", "Bytes/Second", lambda v, _: v * 1024),
    # Prism counts the bytes of each sampling interval: divide to get a rate.
    "network.received_throughput": ("hypervisor_num_received_bytes", "Bytes/Second", lambda v, i: v / i),
    "network.sent_throughput": ("hypervisor_num_transmitted_bytes", "Bytes/Second", lambda v, i: v / i),
}


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
                cols["value"].append(round(convert(value, interval_s), 6))
                cols["unit"].append(unit)
    return cols


def metric_points(account: str, vm_uuid: str, series: dict, interval_s: int,
                  region_code: str = "", start_ms: int | None = None, end_ms: int | None = None) -> list[dict]:
    """One dict per point (the readable form of :func:`metric_columns`)."""
    cols = metric_columns(series, interval_s, start_ms, end_ms)
    return [{"account": account, "resource_id": vm_uuid, "region_code": region_code, "metric": m,
             "timestamp_ms": t, "value": v, "unit": u}
            for m, t, v, u in zip(cols["metric"], cols["timestamp_ms"], cols["value"], cols["unit"])]


_ATTRIBUTE_INDEX = {attr: i for i, (attr, _, _) in enumerate(METRICS.values())}
_METRIC_NAMES = pa.array(list(METRICS))
_UNITS = pa.array([unit for _, unit, _ in METRICS.values()])


def _series_as_is(ent: Any) -> list[tuple[int, list, list]] | None:
    """(metric index, times, values) per wanted attribute, read in bulk, or None
    when anything is not exactly as Prism answers (the careful path decides then)."""
    try:
        out, seen = [], set()
        for col in ent["data"]:
            a = _ATTRIBUTE_INDEX.get(col["name"])
            if a is None:
                continue
            if a in seen:
                return None
            seen.add(a)
            values = col["values"]
            if type(values) is not list:
                return None
            times = [v["time"] for v in values]
            lists = [v["values"] for v in values]
            if values and (set(map(type, times)) != {int} or set(map(type, lists)) != {list}
                           or min(times) < TIME_MIN or max(times) > TIME_MAX):
                return None
            out.append((a, times, list(map(float, [x[0] for x in lists]))))
        return out
    except (KeyError, TypeError, IndexError, ValueError, OverflowError):
        return None


def _series_checked(ent: Any) -> list[tuple[int, list, list]]:
    return [(_ATTRIBUTE_INDEX[attr], [t for t, _ in pts], [v for _, v in pts])
            for attr, pts in parse_stats_entity(ent, _ATTRIBUTE_INDEX).items()]


class PointColumns:
    """Many VMs' stats gathered into flat columns, turned into one table at once.

    A VM has about a hundred points: converting, filtering and tabulating them
    per VM, point by point, was most of the cost of storing metrics. Here each
    VM's series are read in bulk (or through :func:`parse_stats_entity` when
    anything is odd, which gives the same points) and the arithmetic runs over
    the columns of many VMs. The points are exactly :func:`metric_columns`'.
    """

    def __init__(self, interval_s: int, start_ms: int | None = None, end_ms: int | None = None):
        self.interval_s = interval_s
        self.lo = start_ms if start_ms is not None else -(1 << 62)
        self.hi = end_ms if end_ms is not None else 1 << 62
        self.clear()

    def clear(self) -> None:
        self.uuids: list[str] = []
        self.seg_vm: list[int] = []
        self.seg_metric: list[int] = []
        self.seg_len: list[int] = []
        self.times: list[int] = []
        self.values: list[float] = []

    def __len__(self) -> int:
        return len(self.times)

    def add(self, vm_uuid: str, entity_result: Any) -> None:
        series = _series_as_is(entity_result)
        if series is None:
            series = _series_checked(entity_result)
        vm = len(self.uuids)
        self.uuids.append(vm_uuid)
        for metric, times, values in series:
            self.seg_vm.append(vm)
            self.seg_metric.append(metric)
            self.seg_len.append(len(times))
            self.times += times
            self.values += values

    def table(self) -> pa.Table:
        """resource_id, metric, timestamp_ms, value, unit of the points inside the window."""
        ts_ms = np.array(self.times, dtype=np.int64) // 1000
        raw = np.array(self.values, dtype=np.float64)
        lens = np.array(self.seg_len, dtype=np.int64)
        metric = np.repeat(np.array(self.seg_metric, dtype=np.int64), lens)
        vm = np.repeat(np.array(self.seg_vm, dtype=np.int64), lens)
        with np.errstate(invalid="ignore"):
            keep = (raw >= 0) & (raw != np.inf) & (ts_ms >= self.lo) & (ts_ms < self.hi)
        value = np.empty_like(raw)
        for i, (_, _, convert) in enumerate(METRICS.values()):
            rows = metric == i
            value[rows] = convert(raw[rows], self.interval_s)
        idx_metric, idx_vm = pa.array(metric[keep]), pa.array(vm[keep])
        return pa.table({
            "resource_id": pa.array(self.uuids, pa.string()).take(idx_vm),
            "metric": _METRIC_NAMES.take(idx_metric),
            "timestamp_ms": pa.array(ts_ms[keep]),
            # round() per value, as metric_columns: numpy's round can differ in the last digit
            "value": pa.array(list(map(round, value[keep].tolist(), repeat(6))), pa.float64()),
            "unit": _UNITS.take(idx_metric),
        })


class ExtractMetrics(beam.DoFn):
    """((account, uuid), stats entity_result) -> tables of points, per account.

    One element per VM would cost Beam's per-element work on every step to the
    store; the points of up to ``max_points`` are gathered per account and
    handed on as one table ``{account, points}``, each row a point with its
    resource id, metric, timestamp, value and unit.
    """

    def __init__(self, interval_s: int, start_ms: int, end_ms: int, max_points: int = 100_000):
        self.interval_s, self.start_ms, self.end_ms = interval_s, start_ms, end_ms
        self.max_points = max_points
        self.points = Metrics.counter("metrics", "points_extracted")

    def start_bundle(self):
        self.pending: dict[str, PointColumns] = {}

    def process(self, item: tuple) -> Iterable[dict]:
        (account, uuid), entity_result = item
        if entity_result is None:
            return
        cols = self.pending.get(account)
        if cols is None:
            cols = self.pending[account] = PointColumns(self.interval_s, self.start_ms, self.end_ms)
        cols.add(uuid, entity_result)
        if len(cols) >= self.max_points:
            yield from self._flush(account)

    def finish_bundle(self):
        for account in sorted(self.pending):
            for out in self._flush(account):
                yield GlobalWindows.windowed_value(out)

    def _flush(self, account: str) -> Iterable[dict]:
        cols = self.pending.pop(account)
        table = cols.table()
        if table.num_rows:
            self.points.inc(table.num_rows)
            yield {"account": account, "points": table}
