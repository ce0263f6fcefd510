"""Metric.get_data latency of the plugin for 1 and N VMs over 1 and D days of 5-minute points.

    python benchmarks/plugin_latency.py [--vms 1000] [--days 30] [--repeat 5] [--store DIR]

Generates a metric store like the pipeline's (``date=YYYY-MM-DD/<run_id>-00000.parquet``,
METRIC_POINT schema, rows sorted by metric/resource/timestamp, zstd, 100k-row
groups): VMs x 8 metrics x days x 288 points, one day at a time with numpy
(about 2.3M rows and ~150 MB of memory per day for 1,000 VMs). Then it starts
``python -m plugin monitoring`` as its own process and times Metric.get_data over gRPC
(period 0: the plugin's automatic period), printing p50/p95 per case.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from schemas.parquet import METRIC_POINT  # noqa: E402

METRICS = [("cpu.utilization", "Percent"), ("disk.read_iops", "Count/Second"),
           ("disk.read_throughput", "Bytes/Second"), ("disk.write_iops", "Count/Second"),
           ("disk.write_throughput", "Bytes/Second"), ("memory.utilization", "Percent"),
           ("network.received_throughput", "Bytes/Second"), ("network.sent_throughput", "Bytes/Second")]
POINTS_PER_DAY = 288
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
RUN_ID = "20261201T000000-bench"


def vm_ids(n: int) -> list[str]:
    return sorted(f"00000000-0000-4000-8000-{i:012d}" for i in range(n))


def _strings(codes: np.ndarray, values: list[str]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values)).cast(pa.string())


def day_table(day: datetime, vms: list[str], rng: np.random.Generator) -> pa.Table:
    n_vm, n_m, n_t = len(vms), len(METRICS), POINTS_PER_DAY
    rows = n_m * n_vm * n_t
    metric_codes = np.repeat(np.arange(n_m, dtype=np.int32), n_vm * n_t)
    vm_codes = np.tile(np.repeat(np.arange(n_vm, dtype=np.int32), n_t), n_m)
    t0 = int(day.timestamp() * 1000)
    ts = np.tile(t0 + np.arange(n_t, dtype=np.int64) * 300_000, n_m * n_vm)
    return pa.Table.from_arrays([
        _strings(np.zeros(rows, np.int32), ["pc-bench"]),
        _strings(vm_codes, vms),
        _strings(vm_codes % 4, [f"cluster-{i}" for i in range(4)]),
        _strings(metric_codes, [m for m, _ in METRICS]),
        pa.array(ts, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        pa.array(np.round(rng.random(rows) * 100, 3)),
        _strings(metric_codes, [u for _, u in METRICS]),
        _strings(np.zeros(rows, np.int32), [RUN_ID]),
    ], schema=METRIC_POINT)


def generate(root: str, n_vms: int, days: int) -> float:
    """Write the store; returns seconds taken."""
    t = time.perf_counter()
    vms, rng = vm_ids(n_vms), np.random.default_rng(7)
    for i in range(days):
        day = START + timedelta(days=i)
        directory = os.path.join(root, f"date={day:%Y-%m-%d}")
        os.makedirs(directory, exist_ok=True)
        table = day_table(day, vms, rng)
        pq.write_table(table, os.path.join(directory, f"{RUN_ID}-00000.parquet"), compression="zstd",
                       row_group_size=100_000)
        del table
    return time.perf_counter() - t


def start_plugin(metric_root: str, tmp: str) -> tuple[subprocess.Popen, str]:
    ready = os.path.join(tmp, "plugin-ready.json")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-m", "plugin", "monitoring", "--port", "0", "--metric-store",
                             metric_root, "--ready-file", ready],
                            cwd=repo, env={**os.environ, "PYTHONPATH": repo})
    deadline = time.time() + 60
    while not os.path.exists(ready):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("plugin did not start")
        time.sleep(0.05)
    with open(ready, encoding="utf-8") as fh:
        return proc, json.load(fh)["endpoint"]


def measure(endpoint: str, vms: list[str], days: int, repeat: int) -> dict:
    import grpc
    from google.protobuf import struct_pb2
    from spaceone.api.monitoring.plugin import metric_pb2, metric_pb2_grpc

    query = struct_pb2.Struct()
    query.update({vm: {"resource_id": vm} for vm in vms})
    end = START + timedelta(days=days)
    request = metric_pb2.MetricDataRequest(metric_query=query, metric="cpu.utilization",
                                           start=START.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                           end=end.strftime("%Y-%m-%dT%H:%M:%SZ"), period=0, stat="AVERAGE")
    options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
    times = []
    with grpc.insecure_channel(endpoint, options=options) as ch:
        stub = metric_pb2_grpc.MetricStub(ch)
        for _ in range(repeat + 1):  # the first call is a warm-up
            t = time.perf_counter()
            answer = stub.get_data(request, timeout=600)
            times.append(time.perf_counter() - t)
    labels, series = len(answer.labels.values), len(answer.values.fields)
    warm = sorted(times[1:])
    return {"cold": times[0], "p50": float(np.percentile(warm, 50)), "p95": float(np.percentile(warm, 95)),
            "labels": labels, "series": series, "bytes": answer.ByteSize()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per case (after one warm-up)")
    parser.add_argument("--store", help="reuse/keep the generated store here instead of a temp dir")
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="plugin-bench-")
    root = args.store or os.path.join(tmp, "metrics")
    try:
        if not os.path.isdir(root) or not os.listdir(root):
            secs = generate(root, args.vms, args.days)
            rows = args.vms * len(METRICS) * args.days * POINTS_PER_DAY
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
            print(f"generated {rows:,} rows ({args.vms} VMs x {len(METRICS)} metrics x {args.days} days x "
                  f"{POINTS_PER_DAY}) in {secs:.1f}s, {size / 1e6:.0f} MB on disk")
        proc, endpoint = start_plugin(root, tmp)
        try:
            vms = vm_ids(args.vms)
            print(f"\nMetric.get_data cpu.utilization, stat AVERAGE, automatic period, {args.repeat} timed calls\n")
            print(f"{'VMs':>6} {'days':>5} {'labels':>7} {'series':>7} {'answer MB':>10} "
                  f"{'cold s':>8} {'p50 s':>8} {'p95 s':>8}")
            for n_vm, n_days in ((1, 1), (1, args.days), (args.vms, 1), (args.vms, args.days)):
                r = measure(endpoint, vms[:n_vm], n_days, args.repeat)
                print(f"{n_vm:>6} {n_days:>5} {r['labels']:>7} {r['series']:>7} {r['bytes'] / 1e6:>10.2f} "
                      f"{r['cold']:>8.3f} {r['p50']:>8.3f} {r['p95']:>8.3f}", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
