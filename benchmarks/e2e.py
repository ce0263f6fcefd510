"""End-to-end time of a collection: N VMs (with disks, hosts, clusters) from the
Prism emulator into the CloudForet emulator, first run and second run.

    python -m benchmarks e2e --vms 10000
"""
from __future__ import annotations

import argparse
import platform
import shutil

from benchmarks.harness import emulators, run_pipeline, tempdir, totals, write_config


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks e2e")
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--prism-centrals", type=int, default=2)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="added per CloudForet call")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    work = tempdir()
    cf_args = ["--latency-ms", str(args.latency_ms)] if args.latency_ms else []
    prism_args = ["--vms", str(args.vms), "--prism-centrals", str(args.prism_centrals), "--clusters", "4",
                  "--hosts-per-cluster", "4", "--disks-per-vm", "2"]
    print(f"machine: {platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}")
    print(f"fleet: {args.vms} VMs over {args.prism_centrals} Prism Centrals, 2 disks/VM; "
          f"CloudForet latency {args.latency_ms} ms/call; work dir {work}")
    rows = []
    with emulators(work, prism_args, cf_args) as (prism, cf):
        config = write_config(work, prism, cf)
        for label, at, rid in (("first run", "2026-11-28T06:00:00Z", "bench-1"),
                               ("second run (unchanged fleet)", "2026-11-28T07:00:00Z", "bench-2")):
            r = run_pipeline(config, cf, collected_at=at, run_id=rid)
            t = totals(r["report"])
            rows.append((label, r["seconds"], t, r["peak_rss_mib"]))
    print(f"{'run':30} {'seconds':>8} {'VMs/s':>8} {'created':>8} {'updated':>8} {'costs':>7} {'points':>8} "
          f"{'failed':>6} {'peak RSS MiB':>12}")
    for label, secs, t, rss in rows:
        print(f"{label:30} {secs:8.1f} {t['vms'] / secs:8.0f} {t['created']:8d} {t['updated']:8d} {t['costs']:7d} "
              f"{t['points']:8d} {t['failed']:6d} {rss:12.0f}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
