"""The same fleet read through v3 and through v4 in one run: time, requests, peak memory, ratio.

Each API gets a whole ``python -m pipeline`` run (its own child process, peak RSS of its
process tree sampled) into a fresh CloudForet emulator, against the same in-process
Prism emulators (which count every request they serve). v3 reads pages of
``prism.page_size`` (500); v4 pages hold at most 100. Usage::

    python -m benchmarks.v3_v4 --vms 10000            # both, the v3/v4 table
    python -m benchmarks.v3_v4 --vms 100000 --apis v4 # the 1 GiB goal
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import yaml

from benchmarks.fleet_scale import MIB, TreeSampler
from benchmarks.harness import PRISM_PASSWORD, emulators, run_pipeline, tempdir, totals, write_config
from emulators.prism.fleet import FleetSpec, generate_fleet
from emulators.prism.server import PrismServer

GOAL_MIB = 1024


def one_api(api: str, servers: list[PrismServer], vms: int, page_size: int) -> dict:
    work = tempdir()
    for s in servers:
        s.requests.clear()
    with emulators(work, ["--vms", "1"], []) as (_, cf):  # a fresh CloudForet (its Prism stays idle)
        prism = {"prism_centrals": [{"name": s.pc.name, "host": s.host, "port": s.port} for s in servers]}
        config = write_config(work, prism, cf)
        raw = yaml.safe_load(config.read_text())
        raw["prism"].update(api=api, page_size=page_size)
        config.write_text(yaml.safe_dump(raw))
        with TreeSampler() as sampler:
            r = run_pipeline(config, cf)
    t = totals(r["report"])
    apis = sorted({a.get("api", "?") for a in r["report"]["accounts"].values()})
    if t["vms"] != vms or t["failed"]:
        raise RuntimeError(f"{api}: read {t['vms']} of {vms} VMs, {t['failed']} failed")
    return {"api": "/".join(apis), "seconds": round(r["seconds"], 1), "requests": sum(sum(s.requests.values())
                                                                                  for s in servers),
            "peak_mib": round(sampler.peak_kib / MIB, 1), "vms": t["vms"], "created": t["created"],
            "costs": t["costs"], "points": t["points"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--prism-centrals", type=int, default=2)
    ap.add_argument("--apis", default="v3,v4")
    args = ap.parse_args(argv)
    os.environ["PRISM_PASSWORD"] = PRISM_PASSWORD
    spec = FleetSpec(vms=args.vms, prism_centrals=args.prism_centrals, clusters=4, hosts_per_cluster=4,
                     disks_per_vm=2)
    servers = [PrismServer(pc, username="admin", password=PRISM_PASSWORD).start() for pc in generate_fleet(spec)]
    rows = {}
    try:
        for api in args.apis.split(","):
            rows[api] = one_api(api, servers, args.vms, 500 if api == "v3" else 100)
            print(f"{api}: {rows[api]}", flush=True)
    finally:
        for s in servers:
            s.stop()
    print(f"\n=== {args.vms:,} VMs on {args.prism_centrals} Prism Centrals, one run per API ===")
    print(f"{'api':<6} {'read as':<8} {'s':>8} {'requests':>9} {'peak MiB':>9} {'created':>8} {'costs':>7} "
          f"{'points':>9}")
    for api, r in rows.items():
        print(f"{api:<6} {r['api']:<8} {r['seconds']:>8} {r['requests']:>9} {r['peak_mib']:>9} {r['created']:>8} "
              f"{r['costs']:>7} {r['points']:>9}")
    if "v3" in rows and "v4" in rows:
        a, b = rows["v3"], rows["v4"]
        print(f"v4 / v3: time {b['seconds'] / a['seconds']:.2f}x, requests {b['requests'] / a['requests']:.2f}x, "
              f"peak memory {b['peak_mib'] / a['peak_mib']:.2f}x; same output: "
              f"{(a['created'], a['costs'], a['points']) == (b['created'], b['costs'], b['points'])}")
    if "v4" in rows:
        print(f"v4 peak {rows['v4']['peak_mib']} MiB: {'under' if rows['v4']['peak_mib'] < GOAL_MIB else 'OVER'} "
              f"{GOAL_MIB} MiB")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
