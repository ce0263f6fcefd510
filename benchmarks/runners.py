"""The same collection on each runner, in one run: wall time and the peak memory of all
the processes that run it (the launcher and, on the portable runner, the job service,
the worker pool and its SDK workers; the emulators are the rig, not counted).

    python -m benchmarks runners --vms 10000                  # fn_api and portable (2 SDK workers)

``portable`` is the deployment the tests use (tests/portable.py: a job service spreading a
job over ``--workers`` SDK workers of an EXTERNAL worker pool); Flink is not offered: Beam's
Flink job server jar is not served here (README, "Flink").
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

import yaml

from benchmarks.fleet_scale import tree_rss_kib
from benchmarks.harness import (
    CLOUDFORET_PASSWORD,
    PRISM_PASSWORD,
    ROOT,
    emulators,
    tempdir,
    totals,
    write_config,
)

RUNNERS = ("fn_api", "portable")


def tree_rss_mib(roots: list[int]) -> float:
    """The resident memory of ``roots`` and all their descendants, summed."""
    return sum(tree_rss_kib(pid)[0] for pid in roots) / 1024


class PeakMemory:
    """Samples the processes' summed RSS every ``every_s`` until stopped; keeps the peak."""

    def __init__(self, roots: list[int], every_s: float = 0.2):
        self.roots, self.every_s, self.peak_mib = roots, every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, tree_rss_mib(self.roots))
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_on(runner: str, vms: int, workers: int, work: Path) -> dict:
    from tests.portable import start_portable
    prism_args = ["--vms", str(vms), "--prism-centrals", "2", "--clusters", "4", "--hosts-per-cluster", "4",
                  "--disks-per-vm", "2"]
    secrets = {"PRISM_PASSWORD": PRISM_PASSWORD, "CLOUDFORET_PASSWORD": CLOUDFORET_PASSWORD}
    with emulators(work, prism_args) as (prism, cf):
        shares = workers if runner == "portable" else 1
        config = write_config(work, prism, cf)  # (its overrides cannot name "prism": a parameter's name)
        raw = yaml.safe_load(config.read_text())
        raw["prism"]["rate_limit_shares"] = shares  # each SDK worker process keeps to its share
        config.write_text(yaml.safe_dump(raw))
        deployment = start_portable(work, secrets, workers) if runner == "portable" else None
        try:
            extra = deployment.options if deployment else []
            roots = [deployment.job_service.process.pid, deployment.worker_pool.process.pid] if deployment else []
            env = dict(os.environ, **(secrets if runner == "fn_api" else {"CLOUDFORET_PASSWORD": CLOUDFORET_PASSWORD}))
            args = [sys.executable, "-m", "pipeline", "--config", str(config), "--collected-at",
                    "2026-11-28T06:00:00Z", "--run-id", f"bench-{runner}", "--log-level", "WARNING", *extra]
            start = time.monotonic()
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            with PeakMemory([proc.pid, *roots]) as peak:
                out, err = proc.communicate()
            seconds = time.monotonic() - start
        finally:
            if deployment:
                deployment.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"{runner}: the pipeline exited {proc.returncode}:\n{err[-3000:]}")
    report = json.loads((work / "report.json").read_text())
    return {"seconds": seconds, "peak_mib": peak.peak_mib, "totals": totals(report), "status": report["status"]}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks runners")
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--runners", default=",".join(RUNNERS), help=f"comma-separated, of {', '.join(RUNNERS)}")
    ap.add_argument("--workers", type=int, default=2, help="SDK workers of the portable runner")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    runners = [r for r in args.runners.split(",") if r]
    unknown = sorted(set(runners) - set(RUNNERS))
    if unknown:
        ap.error(f"unknown runner(s) {', '.join(unknown)}: choose from {', '.join(RUNNERS)}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"fleet: {args.vms} VMs over 2 Prism Centrals, 2 disks/VM")
    rows, base = [], tempdir()
    for runner in runners:
        work = base / runner
        work.mkdir()
        rows.append((runner, run_on(runner, args.vms, args.workers, work)))
    print(f"{'runner':10} {'status':8} {'seconds':>8} {'peak MiB (all processes)':>25} {'VMs':>6} {'created':>8} "
          f"{'costs':>6} {'points':>8} {'failed':>6}")
    for runner, r in rows:
        t = r["totals"]
        print(f"{runner:10} {r['status']:8} {r['seconds']:8.1f} {r['peak_mib']:25.0f} {t['vms']:6d} "
              f"{t['created']:8d} {t['costs']:6d} {t['points']:8d} {t['failed']:6d}")
    if len({tuple(sorted(r["totals"].items())) for _, r in rows}) > 1:
        print("MISMATCH: the runners' totals differ (above)")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
