"""ExtractMetrics: Prism VM stats -> metric points with units.

Prism's groups API answers counters per sampling interval in its own units
(ppm, kB/s, bytes per interval); CloudForet wants named metrics with units.
"""
from __future__ import annotations

from typing import Callable, Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

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


class ExtractMetrics(beam.DoFn):
    """((account, uuid), series) -> one batch of metric points per VM.

    A batch (a dict holding the VM's points) instead of one element per point
    keeps millions of points cheap to move; each point still carries its
    resource id, metric, timestamp, value and unit.
    """

    def __init__(self, interval_s: int, start_ms: int, end_ms: int):
        self.interval_s, self.start_ms, self.end_ms = interval_s, start_ms, end_ms
        self.points = Metrics.counter("metrics", "points_extracted")

    def process(self, item: tuple) -> Iterable[dict]:
        (account, uuid), series = item
        cols = metric_columns(series, self.interval_s, self.start_ms, self.end_ms)
        if cols["metric"]:
            self.points.inc(len(cols["metric"]))
            yield {"account": account, "resource_id": uuid, **cols}
