"""The issue's figures, measured side by side in one run on this machine.

    python -m benchmarks fleet_scale [--vms 10000] [--latency-ms 5,0] [--scale 10000,30000,100000]
                                     [--skip-baseline] [--skip-capacity] [--skip-scale] [--skip-rate]

1. For each CloudForet latency (ms added per call; 5 is the headline): the
   pipeline's first run vs the straightforward baseline (benchmarks/baseline.py),
   each on its own fresh pair of emulators with the same fleet, ratio
   baseline/pipeline; then the pipeline's second run over the unchanged fleet
   (same emulators, later the same day, new run id), ratio first/second. What
   CloudForet holds after each is counted and compared. Then two floors, each a
   process that only reads the fleet and the second run's stats window from
   Prism, the second also storing the new points (benchmarks/read_floor.py);
   first run / floor bounds first/second from above.
2. Raw capacity: a tight client (CloudService.create, up to K in flight on one
   channel) against a fresh CloudForet emulator, no latency, vs the pipeline's
   sinks replaying the first run's snapshot into another fresh emulator.
3. Scale: first runs at each size, peak RSS summed over the pipeline's process
   tree (sampled from /proc every 0.2 s) and time.
4. Prism rate: ReadFromPrism alone against an in-process Prism emulator at
   max_requests_per_s=10; the most requests seen in any 1-second window.

Every process (emulators, pipeline, baseline) is a separate OS process, except
the tight client and the Prism rate check, which run in this one.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pyarrow.parquet as pq
from spaceone.api.cost_analysis.v1 import cost_pb2_grpc
from spaceone.api.inventory.v1 import cloud_service_pb2, cloud_service_pb2_grpc

from benchmarks.harness import (
    COST_PROJECT,
    PRISM_PASSWORD,
    ROOT,
    emulators,
    run_pipeline,
    tempdir,
    totals,
    write_config,
)
from connectors.cloudforet import make_query

if TYPE_CHECKING:
    from transforms.elements import Resource

FIRST_AT, SECOND_AT = "2026-11-28T06:00:00Z", "2026-11-28T07:00:00Z"
GOAL_FIRST, GOAL_SECOND, GOAL_SINK = 10.0, 5.0, 0.70
MIB = 1024


# -- /proc sampling of a process tree ------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    out += [int(x) for x in fh.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def tree_rss_kib(pid: int) -> tuple[int, int]:
    """(RSS of pid and all its descendants, number of processes)."""
    total, n, stack, seen = 0, 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss_kib(p)
        n += 1
        stack += _children(p)
    return total, n


class TreeSampler(threading.Thread):
    """Peak summed RSS of this process's children whose command line contains ``marker``
    (and all their descendants: Beam's multiprocessing workers, if any)."""

    def __init__(self, marker: str = "-m pipeline", interval_s: float = 0.2):
        super().__init__(daemon=True)
        self.marker, self.interval_s = marker, interval_s
        self.peak_kib, self.peak_procs, self.samples = 0, 0, 0
        self._halt = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._halt.is_set():
            total = procs = 0
            for child in _children(me):
                if self.marker in _cmdline(child):
                    kib, n = tree_rss_kib(child)
                    total, procs = total + kib, procs + n
            if total:
                self.samples += 1
                if total > self.peak_kib:
                    self.peak_kib, self.peak_procs = total, procs
            self._halt.wait(self.interval_s)

    def __enter__(self) -> "TreeSampler":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt.set()
        self.join()


# -- what CloudForet and the metric store hold --------------------------------------------
def cf_token(cf: dict) -> str:
    return next(iter(cf["app_tokens"].values()))


def cf_counts(cf: dict) -> dict:
    """Cloud services and cost records of provider nutanix that CloudForet holds."""
    channel = grpc.insecure_channel(cf["endpoint"])
    md = (("token", cf_token(cf)),)
    try:
        q = make_query([("provider", "nutanix", "eq")], page=(1, 1))
        cs = cloud_service_pb2_grpc.CloudServiceStub(channel).list(
            cloud_service_pb2.CloudServiceQuery(query=q), metadata=md, timeout=120).total_count
    finally:
        channel.close()
    return {"cloud_services": cs, "costs": stored_costs(Path(cf["db"]))}


def stored_costs(db: Path) -> int:
    """Cost records CloudForet holds (its SQLite: a workspace token's Cost.list sees none of
    what Cost.create stored, as on cost-analysis 2.0.108)."""
    import sqlite3
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM costs WHERE state IS NULL OR state != 'DELETED'").fetchone()[0]
    finally:
        conn.close()


def write_window_s(db: Path) -> float:
    """Seconds from the first to the last cloud service or cost record CloudForet created
    (its own ``created_at`` stamps, in milliseconds, read from the emulator's SQLite)."""
    import sqlite3
    from datetime import datetime
    conn = sqlite3.connect(db)
    try:
        stamps = [v for table in ("cloud_services", "costs") for v in conn.execute(
            f"SELECT min(json_extract(doc, '$.created_at')), max(json_extract(doc, '$.created_at')) "
            f"FROM {table}").fetchone() if v]
    finally:
        conn.close()
    if not stamps:
        return float("nan")
    t = [datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() for v in stamps]
    return max(t) - min(t)


def metric_rows(root: Path) -> int:
    return sum(pq.read_metadata(f).num_rows for f in Path(root).glob("date=*/*.parquet"))


def report_sums(report: dict) -> dict:
    """Every counter of the run report's inventory and cost sections, summed over accounts."""
    out: dict = {}
    for acc in report["accounts"].values():
        for section in ("inventory", "cost"):
            for k, v in acc.get(section, {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[f"{section}.{k}"] = out.get(f"{section}.{k}", 0) + v
    return out


# -- runs ----------------------------------------------------------------------------------
def prism_args(vms: int, pcs: int) -> list[str]:
    return ["--vms", str(vms), "--prism-centrals", str(pcs), "--clusters", "4", "--hosts-per-cluster", "4",
            "--disks-per-vm", "2"]


def cf_args(latency_ms: float) -> list[str]:
    return ["--latency-ms", str(latency_ms)] if latency_ms else []


PIPELINE_ARGS: list[str] = []  # --pipeline-args: Beam options for every pipeline run of the benchmark


def sampled_pipeline(config: Path, cf: dict, **kw) -> dict:
    with TreeSampler() as sampler:
        r = run_pipeline(config, cf, extra=PIPELINE_ARGS, **kw)
    r["tree_peak_mib"] = sampler.peak_kib / MIB
    r["tree_procs"] = sampler.peak_procs
    return r


def run_baseline_child(config: Path, cf: dict, collected_at: str, work: Path) -> dict:
    """The baseline in its own process, like the pipeline."""
    out = work / "baseline.json"
    env = dict(os.environ, PRISM_PASSWORD=PRISM_PASSWORD, CLOUDFORET_TOKEN=cf_token(cf))
    start = time.monotonic()
    with TreeSampler(marker="benchmarks.baseline") as sampler:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.baseline", "--config", str(config),
                               "--collected-at", collected_at, "--json-out", str(out)],
                              cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"baseline exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text())
    result["wall_seconds"] = seconds
    result["tree_peak_mib"] = sampler.peak_kib / MIB
    return result


def read_floor(config: Path, collected_at: str, work: Path, metric_store: Path | None = None) -> dict:
    """benchmarks/read_floor.py in its own process: the fleet and the new stats window read from
    Prism (and with ``metric_store`` the new points stored), nothing else. No run over the same
    fleet can take less."""
    out = work / "read_floor.json"
    store = ["--metric-store", str(metric_store)] if metric_store else []
    env = dict(os.environ, PRISM_PASSWORD=PRISM_PASSWORD)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.read_floor", "--config", str(config),
                           "--collected-at", collected_at, "--json-out", str(out), *store, *PIPELINE_ARGS],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"read_floor exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def _fmt_ratio(x: float, goal: float | None = None) -> str:
    text = f"{x:6.1f}x"
    if goal is not None:
        text += f" ({'meets' if x >= goal else 'BELOW'} goal >= {goal:g}x)"
    return text


def _loud(msg: str) -> None:
    bar = "!" * 78
    print(f"{bar}\n!! {msg}\n{bar}", flush=True)


def compare_latency(vms: int, pcs: int, latency_ms: float, skip_baseline: bool, keep: bool,
                    problems: list) -> dict:
    print(f"\n=== CloudForet latency {latency_ms:g} ms per call: {vms} VMs over {pcs} Prism Centrals ===",
          flush=True)
    work = tempdir()
    out: dict = {"latency_ms": latency_ms, "work": work}
    with emulators(work, prism_args(vms, pcs), cf_args(latency_ms)) as (prism, cf):
        config = write_config(work, prism, cf)
        first = sampled_pipeline(config, cf, collected_at=FIRST_AT, run_id=f"fleet-{latency_ms:g}ms-1")
        held_first = cf_counts(cf)
        second = sampled_pipeline(config, cf, collected_at=SECOND_AT, run_id=f"fleet-{latency_ms:g}ms-2")
        held_second = cf_counts(cf)
        floor = read_floor(config, SECOND_AT, work)
        floor_stored = read_floor(config, SECOND_AT, work, metric_store=work / "floor-metrics")
    points = metric_rows(work / "metrics")
    out.update(first=first, second=second, held_first=held_first, held_second=held_second, floor=floor,
               floor_stored=floor_stored,
               snapshot=work / "snapshots" / f"fleet-{latency_ms:g}ms-1")
    base = None
    if not skip_baseline:
        bwork = tempdir()
        with emulators(bwork, prism_args(vms, pcs), cf_args(latency_ms)) as (prism, cf):
            bconfig = write_config(bwork, prism, cf)
            base = run_baseline_child(bconfig, cf, FIRST_AT, bwork)
            base["held"] = cf_counts(cf)
        base["points_stored"] = metric_rows(bwork / "metrics")
        out["baseline"] = base
        if not keep:
            shutil.rmtree(bwork, ignore_errors=True)

    t1, t2 = totals(first["report"]), totals(second["report"])
    print(f"{'run':34} {'seconds':>8} {'VMs/s':>7} {'CF holds: svc':>13} {'costs':>7} {'points':>8} "
          f"{'failed':>6} {'tree RSS MiB':>12}  ratio")
    if base:
        bc = base["counts"]
        print(f"{'baseline, first run':34} {base['wall_seconds']:8.1f} {bc['vms'] / base['wall_seconds']:7.0f} "
              f"{base['held']['cloud_services']:13d} {base['held']['costs']:7d} {base['points_stored']:8d} "
              f"{bc.get('cloud_services_failed', 0):6d} {base['tree_peak_mib']:12.0f}")
    ratio1 = base["wall_seconds"] / first["seconds"] if base else None
    goal1 = GOAL_FIRST if latency_ms == 5 else None
    print(f"{'pipeline, first run':34} {first['seconds']:8.1f} {t1['vms'] / first['seconds']:7.0f} "
          f"{held_first['cloud_services']:13d} {held_first['costs']:7d} {t1['points']:8d} {t1['failed']:6d} "
          f"{first['tree_peak_mib']:12.0f}  "
          + (f"baseline/pipeline {_fmt_ratio(ratio1, goal1)}" if ratio1 else ""))
    ratio2 = first["seconds"] / second["seconds"]
    print(f"{'pipeline, second run (unchanged)':34} {second['seconds']:8.1f} {t2['vms'] / second['seconds']:7.0f} "
          f"{held_second['cloud_services']:13d} {held_second['costs']:7d} {t2['points']:8d} {t2['failed']:6d} "
          f"{second['tree_peak_mib']:12.0f}  first/second {_fmt_ratio(ratio2, GOAL_SECOND)}")
    print(f"{'Prism read alone (floor of any run)':34} {floor['seconds']:8.1f} {floor['vms'] / floor['seconds']:7.0f} "
          f"{'-':>13} {'-':>7} {'-':>8} {'-':>6} {'-':>12}  highest first/second reachable "
          f"{first['seconds'] / floor['seconds']:.1f}x")
    fs = floor_stored
    print(f"{'Prism read + points stored (floor)':34} {fs['seconds']:8.1f} {fs['vms'] / fs['seconds']:7.0f} "
          f"{'-':>13} {'-':>7} {metric_rows(work / 'floor-metrics'):8d} {'-':>6} {'-':>12}  highest first/second "
          f"reachable {first['seconds'] / fs['seconds']:.1f}x")
    print(f"  Prism read alone: {floor['vms']} VMs and {floor['points']} stats points parsed, nothing written")
    print(f"  pipeline report, first run:  {report_sums(first['report'])}")
    print(f"  pipeline report, second run: {report_sums(second['report'])}")
    print(f"  metric store rows (both pipeline runs): {points}")
    if base:
        print(f"  baseline: {base['counts']}; phases {base['phases']}; {base['counts']['cloudforet_calls']} "
              f"CloudForet calls, each on a new channel")
        if (base["held"]["cloud_services"], base["held"]["costs"]) != \
                (held_first["cloud_services"], held_first["costs"]):
            msg = (f"MISMATCH at {latency_ms:g} ms: pipeline wrote {held_first} but baseline wrote "
                   f"{base['held']}")
            _loud(msg)
            problems.append(msg)
        if base["points_stored"] != t1["points"]:
            msg = (f"MISMATCH at {latency_ms:g} ms: metric points pipeline {t1['points']} vs baseline "
                   f"{base['points_stored']}")
            _loud(msg)
            problems.append(msg)
    if held_second != held_first:
        msg = f"second run changed what CloudForet holds: {held_first} -> {held_second}"
        _loud(msg)
        problems.append(msg)
    for label, t in (("first", t1), ("second", t2)):
        if t["failed"]:
            msg = f"pipeline {label} run at {latency_ms:g} ms reported {t['failed']} failures"
            _loud(msg)
            problems.append(msg)
    out.update(ratio_first=ratio1, ratio_second=ratio2)
    return out


# -- raw capacity --------------------------------------------------------------------------
def sample_records(n: int) -> list[Resource]:
    """n realistic cloud services (VMs and their disks) from the emulator's fleet generator."""
    from emulators.prism.fleet import FleetSpec, generate_fleet
    from transforms.stages.normalize import normalize_vm
    pc = generate_fleet(FleetSpec(vms=max(1, n // 3 + 1), prism_centrals=1, clusters=4, hosts_per_cluster=4,
                                  disks_per_vm=2))[0]
    out: list[Resource] = []
    offset = 0
    while len(out) < n:
        batch = pc.vm_entities(offset, 500)
        if not batch:
            break
        offset += len(batch)
        for e in batch:
            out += normalize_vm(pc.name, "http://127.0.0.1:9440", e)
    return out[:n]


def mixed_requests(n: int) -> list[tuple[str, object]]:
    """n create requests in the pipeline's own mix and order: each cloud service (VM, then its
    disks) followed by its cost records (vCPU + memory per powered-on VM, storage per disk)."""
    from transforms.settings import Rate, RateCard
    from transforms.sinks.cost_analysis import create_request as cost_request
    from transforms.sinks.inventory import create_request as service_request
    from transforms.stages.cost import costs_for
    card = RateCard(Rate(0.02, 0.005, 0.05, "USD"))
    out: list[tuple[str, object]] = []
    for r in sample_records(n):
        out.append(("service", service_request(r)))
        out += [("cost", cost_request(c, COST_PROJECT)) for c in costs_for(r, card, "2026-11-28", "ds-nutanix")]
        if len(out) >= n:
            break
    return out[:n]


def tight_client(cf: dict, requests_: list, in_flight: int) -> tuple[float, int]:
    """(seconds, errors) for every request with up to ``in_flight`` outstanding on one channel."""
    channel = grpc.insecure_channel(cf["endpoint"])
    create = {"service": cloud_service_pb2_grpc.CloudServiceStub(channel).create,
              "cost": cost_pb2_grpc.CostStub(channel).create}
    md = (("token", cf_token(cf)),)
    sem = threading.Semaphore(in_flight)
    errors = [0]

    def done(f):
        if f.exception() is not None:
            errors[0] += 1
        sem.release()

    start = time.monotonic()
    for kind, req in requests_:
        sem.acquire()
        create[kind].future(req, metadata=md, timeout=60).add_done_callback(done)
    for _ in range(in_flight):
        sem.acquire()
    seconds = time.monotonic() - start
    channel.close()
    return seconds, errors[0]


def raw_capacity(calls: int, in_flights: list[int]) -> dict:
    print(f"\n=== CloudForet emulator raw capacity (no latency): {calls} creates per setting, "
          f"CloudService.create and Cost.create in the pipeline's mix ===", flush=True)
    reqs = mixed_requests(calls + 400)
    mix = sum(1 for k, _ in reqs if k == "cost") / len(reqs)
    work = tempdir()
    best = {"rate": 0.0}
    with emulators(work, prism_args(1, 1), []) as (_, cf):
        tight_client(cf, reqs[:400], 16)  # warm-up
        for k in in_flights:
            seconds, errors = tight_client(cf, reqs[400:400 + calls], k)
            rate = calls / seconds
            print(f"  up to {k:4d} in flight on one channel: {seconds:6.2f} s, {rate:7.0f} creates/s "
                  f"({mix:.0%} of them costs), {errors} errors", flush=True)
            if rate > best["rate"] and not errors:
                best = {"rate": rate, "in_flight": k}
    shutil.rmtree(work, ignore_errors=True)
    print(f"  best: {best['rate']:.0f} creates/s at {best.get('in_flight')} in flight")
    return best


def sink_throughput(snapshot: Path, vms: int, pcs: int, best: dict, problems: list) -> dict:
    print(f"\n=== Pipeline sinks vs raw capacity (no latency): replay of {snapshot.name} into a fresh "
          f"CloudForet emulator ===", flush=True)
    work = tempdir()
    with emulators(work, prism_args(1, 1), []) as (prism, cf):
        config = write_config(work, prism, cf)
        r = run_pipeline(config, cf, extra=["--source", "snapshot", "--snapshot", str(snapshot), *PIPELINE_ARGS])
        held = cf_counts(cf)
    window = write_window_s(work / "cf.sqlite")
    shutil.rmtree(work, ignore_errors=True)
    writes = held["cloud_services"] + held["costs"]
    rate, rate_window = writes / r["seconds"], writes / window
    share = rate / best["rate"] if best.get("rate") else float("nan")
    share_window = rate_window / best["rate"] if best.get("rate") else float("nan")
    print("  writes = cloud services + cost records CloudForet holds afterwards. Two rates:\n"
          "  - write window: writes / (last - first created_at CloudForet stamped): the sinks' own rate while\n"
          "    they write (reading and normalizing the snapshot go on in the same step meanwhile);\n"
          "  - whole process: writes / wall time of the replay process (Beam start-up, snapshot check and\n"
          "    read, normalize, lookups, writes, metric store, report): a floor.")
    print(f"  replay: {r['seconds']:.1f} s, write window {window:.1f} s; {held['cloud_services']} cloud services + "
          f"{held['costs']} costs = {writes} writes")
    print(f"  write window:  {rate_window:7.0f} writes/s = {share_window:.0%} of the tight client's "
          f"{best['rate']:.0f}/s ({'meets' if share_window >= GOAL_SINK else 'BELOW'} goal >= {GOAL_SINK:.0%})")
    print(f"  whole process: {rate:7.0f} writes/s = {share:.0%}")
    if share_window < GOAL_SINK:
        problems.append(f"sinks at {share_window:.0%} of raw capacity (goal {GOAL_SINK:.0%})")
    return {"seconds": r["seconds"], "writes": writes, "rate": rate, "share": share, "window_s": window,
            "rate_window": rate_window, "share_window": share_window}


# -- scale ---------------------------------------------------------------------------------
def scale(sizes: list[int], pcs: int, latency_ms: float, keep: bool, problems: list) -> list:
    print(f"\n=== Scale: first runs, CloudForet latency {latency_ms:g} ms/call ===", flush=True)
    rows = []
    for n in sizes:
        work = tempdir()
        with emulators(work, prism_args(n, pcs), cf_args(latency_ms)) as (prism, cf):
            config = write_config(work, prism, cf)
            r = sampled_pipeline(config, cf, collected_at=FIRST_AT, run_id=f"scale-{n}")
            held = cf_counts(cf)
        t = totals(r["report"])
        rows.append((n, r["seconds"], r["tree_peak_mib"], r["tree_procs"], held, t))
        print(f"  {n:7d} VMs: {r['seconds']:7.1f} s, peak RSS {r['tree_peak_mib']:6.0f} MiB over "
              f"{r['tree_procs']} process(es); CF holds {held}; failed {t['failed']}", flush=True)
        if t["failed"]:
            problems.append(f"scale {n}: {t['failed']} failures")
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'VMs':>8} {'seconds':>8} {'VMs/s':>7} {'peak RSS MiB':>12} {'procs':>5}  memory vs smallest")
    n0, _, m0, *_ = rows[0]
    for n, secs, mib, procs, _, _ in rows:
        print(f"{n:8d} {secs:8.1f} {n / secs:7.0f} {mib:12.0f} {procs:5d}  x{mib / m0:.2f} for x{n / n0:g} VMs"
              + ("  (OVER 2 GiB)" if mib >= 2048 else ""))
    if len(rows) > 1:
        n1, _, m1, *_ = rows[-1]
        growth, linear = m1 / m0, n1 / n0
        print(f"  memory growth {n0}->{n1} VMs: x{growth:.2f} (data x{linear:g}): "
              f"{'less than linear' if growth < linear else 'NOT less than linear'}; "
              f"peak {'under' if m1 < 2048 else 'OVER'} 2 GiB")
    return rows


# -- Prism rate ----------------------------------------------------------------------------
def prism_rate(rate: float, vms: int, page_size: int, workers: int) -> dict:
    """ReadFromPrism alone, in this process, against an in-process PrismServer."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from emulators.prism.fleet import FleetSpec, generate_fleet
    from emulators.prism.server import PrismServer
    from pipeline.config import parse_config
    from pipeline.run import share_rate_limit
    from transforms.settings import RunContext
    from transforms.sources.prism import ReadFromPrism

    os.environ["PRISM_PASSWORD"] = PRISM_PASSWORD
    pc = generate_fleet(FleetSpec(vms=vms, prism_centrals=1, clusters=2, hosts_per_cluster=2, disks_per_vm=1))[0]
    server = PrismServer(pc, username="admin", password=PRISM_PASSWORD).start()
    stamps: list[float] = []
    original = server._dispatch

    def recorded(*a, **kw):
        stamps.append(time.monotonic())
        return original(*a, **kw)

    setattr(server, "_dispatch", recorded)  # counts each request the emulator serves
    work = tempdir()
    try:
        config = parse_config({
            "accounts": [{"name": pc.name, "host": "127.0.0.1", "port": server.port, "scheme": "http",
                          "username": "admin", "password_env": "PRISM_PASSWORD"}],
            "prism": {"page_size": page_size, "max_requests_per_s": rate, "max_concurrency": 8, "api": "v3"},
            "cloudforet": {"endpoint": "127.0.0.1:1", "domain_id": "d", "workspace_id": "w",
                           "auth": {"token_env": "CLOUDFORET_TOKEN"}},
            "metric_store": {"path": str(work / "metrics")}, "report": {"path": str(work / "r.json")},
            "snapshot": {"path": str(work / "snapshots")}})
        ctx = RunContext.create(time.time(), 3600, 300, "rate-check")
        opts = ["--direct_num_workers", str(workers)]
        if workers > 1:
            opts += ["--direct_running_mode", "multi_processing"]
        config = share_rate_limit(config, opts)  # what `python -m pipeline` does with these options
        start = time.monotonic()
        with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions(opts)) as p:
            _ = p | beam.Create([pc.name]) | ReadFromPrism(config, ctx)
        seconds = time.monotonic() - start
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    stamps.sort()
    j, worst = 0, 0
    for i, t in enumerate(stamps):  # most requests in any window [t, t + 1 s)
        while j < len(stamps) and stamps[j] < t + 1.0:
            j += 1
        worst = max(worst, j - i)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    per_second = [0] * (int(span) + 1) if stamps else []
    for t in stamps:
        per_second[int(t - stamps[0])] += 1
    return {"requests": len(stamps), "max_1s": worst, "seconds": seconds, "per_second": per_second,
            "mean_rate": (len(stamps) - 1) / span if span else 0.0, "workers": workers}


def rate_check(problems: list, workers_list: list[int]) -> list[dict]:
    rate, vms, page = 10, 2000, 50
    print(f"\n=== Prism rate: ReadFromPrism alone, max_requests_per_s={rate}, {vms} VMs, page_size={page}, "
          f"one Prism Central (in-process emulator, requests timestamped in _dispatch) ===", flush=True)
    rows = []
    for workers in workers_list:
        # each worker process's limiter keeps to rate/workers with a burst of one request
        limit = rate + workers
        r = prism_rate(rate, vms, page, workers)
        ok = r["max_1s"] <= limit
        print(f"  {workers} worker(s){' (multi_processing)' if workers > 1 else ''}: {r['requests']} requests "
              f"in {r['seconds']:.1f} s, mean {r['mean_rate']:.1f}/s, max in any 1 s window {r['max_1s']} "
              f"({'within' if ok else 'ABOVE'} {rate}/s + a burst of 1 per worker = {limit}); requests per "
              f"second from the first: {r['per_second']}", flush=True)
        if not ok:
            problems.append(f"Prism rate with {workers} worker(s): {r['max_1s']} requests in 1 s > {limit}")
        rows.append({**r, "rate": rate, "limit": limit})
    return rows


# -- the table -----------------------------------------------------------------------------
def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def print_table(args, results: dict, best: dict | None, sink: dict | None, scale_rows: list,
                rates: list) -> None:
    """Every figure of the issue in one table, the ratio next to each, the goal and whether it holds."""
    lats = list(results)
    head = "".join(f"{f'{lat:g} ms/call':>16}" for lat in lats)
    print(f"{'figure':46}{head}  goal")
    def row(label: str, cells: list[str], goal: str = "") -> None:
        print(f"{label:46}{''.join(f'{c:>16}' for c in cells)}  {goal}")
    n = args.vms
    row(f"{n:,} VMs: baseline first run (s)",
        [f"{r['baseline']['wall_seconds']:.1f}" if r.get("baseline") else "-" for r in results.values()])
    row(f"{n:,} VMs: pipeline first run (s)", [f"{r['first']['seconds']:.1f}" for r in results.values()])
    cells, goal = [], ""
    for lat, r in results.items():
        x = r.get("ratio_first")
        cells.append(f"{x:.1f}x" if x else "-")
        if lat == 5 and x:
            goal = f">= {GOAL_FIRST:g}x at 5 ms: {_verdict(x >= GOAL_FIRST)}"
    row("  baseline / pipeline", cells, goal)
    row(f"{n:,} VMs: pipeline second run, unchanged (s)", [f"{r['second']['seconds']:.1f}" for r in results.values()])
    cells = [f"{r['ratio_second']:.1f}x" for r in results.values()]
    worst = min((r["ratio_second"] for r in results.values()), default=0)
    row("  first / second", cells, f">= {GOAL_SECOND:g}x: {_verdict(worst >= GOAL_SECOND)}" if results else "")
    row(f"{n:,} VMs: Prism read alone, floor (s)", [f"{r['floor']['seconds']:.1f}" for r in results.values()])
    row("  first / floor: highest first/second", [f"{r['first']['seconds'] / r['floor']['seconds']:.1f}x"
                                                   for r in results.values()])
    row(f"{n:,} VMs: read + points stored, floor (s)",
        [f"{r['floor_stored']['seconds']:.1f}" for r in results.values()])
    row("  first / that floor: highest first/second", [
        f"{r['first']['seconds'] / r['floor_stored']['seconds']:.1f}x" for r in results.values()])
    row("  pipeline peak RSS, first run (MiB)", [f"{r['first']['tree_peak_mib']:.0f}" for r in results.values()])
    if best:
        print(f"{'tight client, best creates/s (in flight)':46}{best['rate']:16.0f}  ({best.get('in_flight')})")
    if sink:
        print(f"{'sinks, write window: writes/s, share':46}{sink['rate_window']:16.0f}  {sink['share_window']:.0%} "
              f"of raw; >= {GOAL_SINK:.0%}: {_verdict(sink['share_window'] >= GOAL_SINK)}")
        print(f"{'sinks, whole replay process: writes/s, share':46}{sink['rate']:16.0f}  {sink['share']:.0%} of raw")
    if scale_rows:
        print(f"scale, first runs at {args.scale_latency_ms:g} ms/call:")
        n0, _, m0, *_ = scale_rows[0]
        for vms, secs, mib, procs, _, _ in scale_rows:
            print(f"  {vms:>9,} VMs {secs:9.1f} s {mib:8.0f} MiB peak ({procs} procs)  memory x{mib / m0:.2f} "
                  f"for x{vms / n0:g} VMs" + ("  OVER 2 GiB" if mib >= 2048 else ""))
        n1, _, m1, *_ = scale_rows[-1]
        print(f"  goal: largest completes under 2 GiB: {_verdict(m1 < 2048)}; growth less than linear: "
              f"{_verdict(len(scale_rows) < 2 or m1 / m0 < n1 / n0)}")
    for r in rates:
        print(f"Prism rate, {r['workers']} worker(s): worst 1 s window {r['max_1s']} requests at "
              f"{r['rate']}/s configured (limit {r['limit']}): {_verdict(r['max_1s'] <= r['limit'])}")


# -- main ----------------------------------------------------------------------------------
def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks fleet_scale")
    ap.add_argument("--vms", type=int, default=10_000, help="fleet of the side-by-side comparison")
    ap.add_argument("--prism-centrals", type=int, default=2)
    ap.add_argument("--latency-ms", default="5,0", help="CloudForet latencies to compare at (ms per call)")
    ap.add_argument("--scale", default="10000,30000,100000", help="fleet sizes of the scale runs ('' to skip)")
    ap.add_argument("--scale-latency-ms", type=float, default=5.0)
    ap.add_argument("--capacity-calls", type=int, default=10_000)
    ap.add_argument("--in-flight", default="16,64,256")
    ap.add_argument("--rate-workers", default="1,2", help="Beam workers for the Prism rate check")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-capacity", action="store_true")
    ap.add_argument("--skip-rate", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    ap.add_argument("--pipeline-args", default="",
                    help="Beam options for every pipeline run, e.g. '--direct_num_workers 2 "
                         "--direct_running_mode multi_processing'")
    args = ap.parse_args(argv)
    PIPELINE_ARGS[:] = args.pipeline_args.split()
    latencies = [float(x) for x in args.latency_ms.split(",") if x.strip()]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.2f} (other work on the machine skews every figure)")
    if PIPELINE_ARGS:
        print(f"pipeline runs with: {' '.join(PIPELINE_ARGS)}")
    print(f"fleet: {args.vms} VMs over {args.prism_centrals} Prism Centrals, 4 clusters x 4 hosts each, "
          f"2 disks/VM; pipeline config from benchmarks/harness.write_config", flush=True)
    problems: list[str] = []
    results = {}
    started = time.monotonic()
    for lat in latencies:
        results[lat] = compare_latency(args.vms, args.prism_centrals, lat, args.skip_baseline, args.keep, problems)
    best, sink, scale_rows, rates = None, None, [], []
    if not args.skip_capacity:
        best = raw_capacity(args.capacity_calls, _ints(args.in_flight))
        source = results.get(0.0) or next(iter(results.values()), None)
        if source and source["snapshot"].exists():
            sink = sink_throughput(source["snapshot"], args.vms, args.prism_centrals, best, problems)
        else:
            print("  (no first-run snapshot to replay: the sink throughput was not measured)")
    if args.scale:
        scale_rows = scale(_ints(args.scale), args.prism_centrals, args.scale_latency_ms, args.keep, problems)
    if not args.skip_rate:
        rates = rate_check(problems, _ints(args.rate_workers))
    print(f"\n=== Summary ({time.monotonic() - started:.0f} s) ===")
    print_table(args, results, best, sink, scale_rows, rates)
    if problems:
        print("PROBLEMS:")
        for p in problems:
            print(f"  - {p}")
    for r in results.values():
        if not args.keep:
            shutil.rmtree(r["work"], ignore_errors=True)
        else:
            print(f"  kept {r['work']}")
