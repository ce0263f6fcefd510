"""Soak: a fleet under ~2% mixed faults on both sides, several runs with churn in between.

    python -m benchmarks soak [--vms 20000] [--rate 0.02] [--runs 3] [--churn 200]
                              [--prism-centrals 2] [--seed 11] [--skip-fault-free] [--keep]

For each of ``--runs`` runs (the same day, an hour apart, a new run id each):
before every run but the first, ``--churn`` random live VMs are deleted and as
many added (spread over the Prism Centrals); then ``python -m pipeline`` runs
as a child process; then what CloudForet holds is compared with the fleet
exactly (the comparison of ``tests/integration/test_fault_matrix.py``):

* cloud services by ``reference.resource_id``: missing, extra (incl. deleted
  resources still there), duplicated, wrong fields (name, type, region,
  account; power state and vCPUs of VMs);
* cost keys ``(resource, usage_type, billed_date)``: each expected key exactly
  once. The expected set is the union over this day's runs, since a VM deleted
  since an earlier run still cost its share of the day.

The same sequence (same fleet, same churn) runs fault-free on its own fresh
emulators, interleaved run by run with the faulty one, so both see the same
machine load; the table compares the times.

Processes: the pipeline and the CloudForet emulator are separate processes.
The Prism Centrals run in THIS process (``PrismServer`` threads), because the
Prism CLI cannot delete or add VMs and the benchmark must change the fleet
between runs and recompute it; while the pipeline runs, this process does
nothing but serve Prism. The CloudForet emulator is started through this
module (``--cloudforet-child``): the same ``CloudForetEmulator`` and
``CloudForetFaults`` as ``python -m emulators.cloudforet``, plus a JSON file
with ``faults.injected`` rewritten every 0.25 s, which the CLI does not expose.

Figures and where they come from:

* injected faults, Prism: ``PrismFaults.injected`` of the in-process emulators;
* injected faults, CloudForet: ``CloudForetFaults.injected`` of the child;
* retries: the run report's Beam counters: ``prism.retries`` (Prism calls
  retried), ``inventory.records_retried`` and ``cost.records_retried`` (records
  written again by the CloudForet sinks), ``cloudforet.call_retries`` (lookups
  retried inside the sinks' client). Reconcile, type/region registration and
  the notification retry without a counter: there the injected faults are the
  figure.

Exit status 1 when any run's diff is not empty, a run's report is not SUCCESS
with a complete read, or a pipeline run fails.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import PRISM_PASSWORD, ROOT, _wait_ready, run_pipeline, tempdir, write_config

DAY = "2026-11-28"


def prism_spec(rate: float) -> str:
    r = rate / 5
    return f"429:{r:g}@retry_after=0.2,500:{r:g},503:{r:g},reset:{r:g},truncated:{r:g}"


def cloudforet_spec(rate: float) -> str:
    r = rate / 4
    return f"UNAVAILABLE:{r:g},DEADLINE_EXCEEDED:{r:g},DEADLINE_EXCEEDED_AFTER:{r:g},RESOURCE_EXHAUSTED:{r:g}"


# -- the CloudForet emulator as a child process that also publishes faults.injected -------
def cloudforet_child(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.soak --cloudforet-child")
    ap.add_argument("--db", required=True)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--stats-file", required=True)
    ap.add_argument("--faults", default="")
    ap.add_argument("--fault-seed", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=None)
    args = ap.parse_args(argv)

    from emulators.cloudforet.config import EmulatorConfig
    from emulators.cloudforet.faults import CloudForetFaults
    from emulators.cloudforet.server import CloudForetEmulator
    from plugin.files import write_atomic

    config = EmulatorConfig()
    if args.latency_ms is not None:
        config.latency_ms = args.latency_ms
    faults = CloudForetFaults(args.faults, seed=args.fault_seed) if args.faults else None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def publish() -> None:
        stats = {"injected": dict(faults.injected) if faults else {},
                 "requests_seen": faults.requests_seen if faults else 0}
        write_atomic(args.stats_file, json.dumps(stats))

    emulator = CloudForetEmulator(args.db, config, port=0, faults=faults).start()
    try:
        ready = {"endpoint": emulator.endpoint, "domain_id": config.domain_id,
                 "workspace_id": config.workspace_id,
                 "app_tokens": {app["app_id"]: emulator.app_token(app["app_id"]) for app in config.apps}}
        publish()
        write_atomic(args.ready_file, json.dumps(ready) + "\n")
        while not stop.wait(0.25):
            publish()
        publish()
    finally:
        emulator.stop(grace=1.0)
    return 0


class CloudForetProcess:
    def __init__(self, work: Path, spec: str, seed: int, latency_ms: float | None) -> None:
        self.work, self.stats_file = work, work / "cf-faults.json"
        args = [sys.executable, "-m", "benchmarks.soak", "--cloudforet-child", "--db", str(work / "cf.sqlite"),
                "--ready-file", str(work / "cf.json"), "--stats-file", str(self.stats_file),
                "--fault-seed", str(seed)]
        if spec:
            args += ["--faults", spec]
        if latency_ms is not None:
            args += ["--latency-ms", str(latency_ms)]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(work / "cf.log", "w"))
        try:
            self.ready = _wait_ready(work / "cf.json", self.proc, "CloudForet")
        except BaseException:
            self.stop()
            raise
        self._last: Counter = Counter()
        self._last_calls = 0

    def injected_since_last(self) -> tuple[Counter, int]:
        """(faults the CloudForet emulator put on the wire, calls it saw) since the previous call."""
        time.sleep(0.6)  # the child rewrites its stats file every 0.25 s
        stats = json.loads(self.stats_file.read_text())
        now = Counter(stats["injected"])
        delta, self._last = now - self._last, now
        calls, self._last_calls = stats["requests_seen"] - self._last_calls, stats["requests_seen"]
        return delta, calls

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- one sequence: emulators, churn, runs, diffs ------------------------------------------
class Sequence:
    """A fleet served by in-process Prism Centrals + a CloudForet child + the pipeline runs."""

    def __init__(self, label: str, args: argparse.Namespace, faulty: bool) -> None:
        from emulators.prism.faults import PrismFaults
        from emulators.prism.fleet import FleetSpec, generate_fleet
        from emulators.prism.server import PrismServer

        self.label, self.args, self.faulty = label, args, faulty
        self.work = tempdir()
        self.prism_spec = prism_spec(args.rate) if faulty else ""
        self.cf_spec = cloudforet_spec(args.rate) if faulty else ""
        spec = FleetSpec(seed=args.seed, prism_centrals=args.prism_centrals, clusters=4, hosts_per_cluster=4,
                         vms=args.vms, disks_per_vm=2)
        self.servers, self.cf = [], None
        try:
            for pc in generate_fleet(spec):
                faults = PrismFaults(self.prism_spec, seed=args.fault_seed + pc.index) if faulty else None
                self.servers.append(PrismServer(pc, username="admin", password=PRISM_PASSWORD,
                                                faults=faults).start())
            self.cf = CloudForetProcess(self.work, self.cf_spec, args.fault_seed, args.latency_ms)
            ready = {"prism_centrals": [{"name": s.pc.name, "host": s.host, "port": s.port}
                                        for s in self.servers]}
            self.config = write_config(self.work, ready, self.cf.ready)
            raw = yaml.safe_load(self.config.read_text())  # write_config's 'prism' parameter hides that override
            raw["prism"].update(max_attempts=8, page_size=args.page_size)
            raw["cloudforet"].update(max_attempts=8, touch_after_s=0)
            self.config.write_text(yaml.safe_dump(raw))
        except BaseException:
            self.close()
            raise
        self.churn_rng = random.Random(args.seed * 1000 + 17)  # same churn in both sequences
        self.cost_union: set = set()
        self.rows: list[dict] = []

    # the fleet changes between runs
    def churn(self, n: int) -> dict:
        live = [(k, i) for k, s in enumerate(self.servers) for i in s.pc.iter_live_indices()]
        victims = self.churn_rng.sample(live, min(n, len(live)))
        by_pc: dict[int, list[int]] = {}
        for k, i in victims:
            by_pc.setdefault(k, []).append(i)
        for k, idx in by_pc.items():
            self.servers[k].pc.delete_vms(idx)
        added = 0
        for k, s in enumerate(self.servers):
            share = n // len(self.servers) + (1 if k < n % len(self.servers) else 0)
            added += len(s.pc.add_vms(share))
        return {"deleted": len(victims), "added": added}

    def expected(self) -> tuple[dict, set]:
        from transforms.settings import Rate, RateCard
        from transforms.stages.cost import costs_for
        from transforms.stages.normalize import is_prism_central, normalize_cluster, normalize_host, normalize_vm

        card = RateCard(default=Rate(vcpu_hour=0.02, gib_ram_hour=0.005, gib_storage_month=0.05, currency="USD"))
        out: dict = {}
        for s in self.servers:
            pc = s.pc
            for i in pc.iter_live_indices():
                for r in normalize_vm(pc.name, s.url, pc.vm_entity(i)):
                    out[r["resource_id"]] = r
            for c in pc.cluster_entities():
                if not is_prism_central(c):
                    out[c["metadata"]["uuid"]] = normalize_cluster(pc.name, s.url, c)
            for h in pc.host_entities():
                out[h["metadata"]["uuid"]] = normalize_host(pc.name, s.url, h)
        costs = {(c["resource"], c["usage_type"], c["billed_date"])
                 for r in out.values() for c in costs_for(r, card, DAY, "ds-nutanix")}
        return out, costs

    def diff(self) -> dict:
        """What CloudForet holds vs the fleet now (and the day's costs vs the union over runs)."""
        from emulators.cloudforet.store import Store

        want, want_costs = self.expected()
        self.cost_union |= want_costs
        store = Store(str(self.work / "cf.sqlite"))
        try:
            services = store.cloud_services()
            cost_docs = store.costs()
        finally:
            store.close()
        refs = Counter(c["reference"]["resource_id"] for c in services)
        wrong = 0
        for c in services:
            w = want.get(c["reference"]["resource_id"])
            if w is None:
                continue
            if (c["name"], c["cloud_service_type"], c["region_code"], c["account"]) != \
                    (w["name"], w["cloud_service_type"], w["region_code"], w["account"]):
                wrong += 1
            elif w["kind"] == "vm" and (c["data"].get("power_state"), c["data"].get("vcpus")) != \
                    (w["data"]["power_state"], w["data"]["vcpus"]):
                wrong += 1
        costs = Counter((c["resource"], c["usage_type"], c["billed_date"]) for c in cost_docs)
        d: dict[str, Any] = {
            "missing": len(set(want) - set(refs)),
            "extra": len(set(refs) - set(want)),
            "duplicated": sum(n - 1 for n in refs.values() if n > 1),
            "wrong": wrong,
            "cost_missing": len(self.cost_union - set(costs)),
            "cost_extra": len(set(costs) - self.cost_union),
            "cost_duplicated": sum(n - 1 for n in costs.values() if n > 1),
        }
        d["total"] = sum(d.values())
        d["held"] = {"cloud_services": len(services), "costs": len(cost_docs),
                     "expected_services": len(want), "expected_costs": len(self.cost_union)}
        if d["total"]:
            d["examples"] = {"missing": sorted(set(want) - set(refs))[:3],
                             "extra": sorted(set(refs) - set(want))[:3],
                             "duplicated": [k for k, n in refs.items() if n > 1][:3],
                             "cost_missing": sorted(self.cost_union - set(costs))[:3],
                             "cost_duplicated": [k for k, n in costs.items() if n > 1][:3]}
        return d

    def run(self, k: int) -> dict:
        assert self.cf is not None  # started in __init__
        churn = self.churn(self.args.churn) if k > 1 else {"deleted": 0, "added": 0}
        for s in self.servers:  # per-run counters; same draws in every run of a given seed
            if s.faults is not None:
                s.faults.set(self.prism_spec, seed=self.args.fault_seed + 100 * k + s.pc.index)
        row: dict[str, Any] = {"run": k, "churn": churn, "vms": sum(s.pc.vm_count() for s in self.servers)}
        try:
            r = run_pipeline(self.config, self.cf.ready, collected_at=f"{DAY}T{5 + k:02d}:00:00Z",
                             run_id=f"soak-{self.label}-{k}")
            row["seconds"], report = r["seconds"], r["report"]
        except RuntimeError as exc:
            row["seconds"], report, row["error"] = float("nan"), None, str(exc)
        prism_inj: Counter = Counter()
        row["prism_calls"] = 0
        for s in self.servers:
            if s.faults is not None:
                prism_inj += s.faults.injected
                row["prism_calls"] += s.faults.requests_seen
        row["prism_injected"] = prism_inj
        row["cf_injected"], row["cf_calls"] = self.cf.injected_since_last()
        problems = []
        if report is not None:
            counters = report.get("counters", {})
            row["retries"] = {k2: v for k2, v in counters.items() if k2.endswith(("retries", "retried"))}
            row["counters"] = counters
            row["accounts"] = {}
            for name, a in report["accounts"].items():
                row["accounts"][name] = {"status": a.get("status"), "complete": a.get("complete"),
                                         "reconcile": a.get("reconcile"), "dead_letters": a.get("dead_letters"),
                                         "inventory": a.get("inventory"), "cost": a.get("cost")}
                if a.get("status") != "SUCCESS" or not a.get("complete"):
                    problems.append(f"{name}: status {a.get('status')}, complete {a.get('complete')}, "
                                    f"errors {a.get('errors', [])[:3]}, notes {a.get('notes', [])[:3]}")
        else:
            row["retries"], problems = {}, [row["error"][-2000:]]
        row["diff"] = self.diff()
        row["problems"] = problems
        self.rows.append(row)
        return row

    def close(self) -> None:
        for s in self.servers:
            s.stop()
        if self.cf is not None:
            self.cf.stop()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


# -- output ---------------------------------------------------------------------------------
def _kinds(c: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"


def print_run(label: str, row: dict) -> None:
    d = row["diff"]
    print(f"  [{label}] run {row['run']}: {row['vms']} VMs (churn -{row['churn']['deleted']} "
          f"+{row['churn']['added']}), {row['seconds']:.1f} s; diff {d['total']} (missing {d['missing']}, "
          f"extra {d['extra']}, duplicated {d['duplicated']}, wrong fields {d['wrong']}, cost missing "
          f"{d['cost_missing']}, cost extra {d['cost_extra']}, cost duplicated {d['cost_duplicated']}); "
          f"CloudForet holds {d['held']['cloud_services']} services (expected {d['held']['expected_services']}), "
          f"{d['held']['costs']} costs (expected {d['held']['expected_costs']})", flush=True)
    if row["prism_injected"] or row["cf_injected"]:
        print(f"      injected: Prism {sum(row['prism_injected'].values())} of {row['prism_calls']} requests "
              f"({_kinds(row['prism_injected'])}); CloudForet {sum(row['cf_injected'].values())} of "
              f"{row['cf_calls']} calls ({_kinds(row['cf_injected'])})", flush=True)
    print(f"      retry counters: {row['retries'] or 'none'}; reconcile: "
          f"{ {n: a['reconcile'] for n, a in row.get('accounts', {}).items()} }", flush=True)
    if d["total"]:
        print(f"      DIFF examples: {d['examples']}", flush=True)
    for p in row["problems"]:
        print(f"      PROBLEM: {p}", flush=True)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--cloudforet-child":
        sys.exit(cloudforet_child(argv[1:]))
    ap = argparse.ArgumentParser(prog="python -m benchmarks soak")
    ap.add_argument("--vms", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=0.02, help="share of calls failing, on each side")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--churn", type=int, default=200, help="VMs deleted and VMs added before each later run")
    ap.add_argument("--prism-centrals", type=int, default=2)
    ap.add_argument("--seed", type=int, default=11, help="fleet and churn seed")
    ap.add_argument("--fault-seed", type=int, default=5)
    ap.add_argument("--page-size", type=int, default=500,
                    help="Prism page size asked (harness default 500; smaller = more Prism requests to fault)")
    ap.add_argument("--latency-ms", type=float, default=None, help="CloudForet latency per call (default none)")
    ap.add_argument("--skip-fault-free", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    args = ap.parse_args(argv)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.2f} (other work on the machine skews every time)")
    print(f"fleet: {args.vms} VMs over {args.prism_centrals} Prism Centrals, 4 clusters x 4 hosts each, 2 disks/VM; "
          f"{args.runs} runs on {DAY}, churn {args.churn} deleted + {args.churn} added before each later run")
    print(f"faults (~{args.rate:.1%} of calls on each side):\n  Prism:      {prism_spec(args.rate)}\n"
          f"  CloudForet: {cloudforet_spec(args.rate)}")
    print(f"config: harness.write_config + prism.max_attempts 8, prism.page_size {args.page_size}, "
          "cloudforet.max_attempts 8, touch_after_s 0, reconcile on (default guard 20%)", flush=True)
    started = time.monotonic()
    seqs: dict = {}
    try:
        seqs["faulty"] = Sequence("faulty", args, True)
        if not args.skip_fault_free:
            seqs["fault-free"] = Sequence("clean", args, False)
        for k in range(1, args.runs + 1):  # interleaved, so both see the same machine load
            for label, seq in seqs.items():
                print_run(label, seq.run(k))
    finally:
        for seq in seqs.values():
            seq.close()

    faulty = seqs["faulty"].rows
    clean = seqs["fault-free"].rows if "fault-free" in seqs else [None] * len(faulty)
    print(f"\n=== Soak: {args.vms} VMs, {args.rate:.1%} faults per side, {args.runs} runs "
          f"({time.monotonic() - started:.0f} s in all; load average now {os.getloadavg()[0]:.2f}) ===")
    print(f"{'run':>3} | {'faulty s':>8} | {'fault-free s':>12} | {'ratio':>6} | {'injected Prism':>14} | "
          f"{'injected CF':>11} | {'records retried':>21} | {'diff':>4} | {'fault-free diff':>15}")
    failed = False
    for f, c in zip(faulty, clean):
        ratio = f"{f['seconds'] / c['seconds']:5.2f}x" if c else "-"
        r = f["retries"]
        print(f"{f['run']:>3} | {f['seconds']:8.1f} | {(c['seconds'] if c else float('nan')):12.1f} | {ratio:>6} | "
              f"{sum(f['prism_injected'].values()):>14} | {sum(f['cf_injected'].values()):>11} | "
              f"{r.get('inventory.records_retried', 0) + r.get('cost.records_retried', 0):>21} | "
              f"{f['diff']['total']:>4} | "
              f"{(c['diff']['total'] if c else '-'):>15}")
        for row in (f, c):
            if row and (row["diff"]["total"] or row["problems"]):
                failed = True
    tf = sum(f["seconds"] for f in faulty)
    if clean[0]:  # then every run has its fault-free twin
        tc = sum(c["seconds"] for c in clean if c)
        print(f"all | {tf:8.1f} | {tc:12.1f} | {tf / tc:5.2f}x |")
    pi: Counter = Counter()
    ci: Counter = Counter()
    rt: Counter = Counter()
    for f in faulty:
        pi += f["prism_injected"]
        ci += f["cf_injected"]
        rt += Counter(f["retries"])
    pc, cc = sum(f["prism_calls"] for f in faulty), sum(f["cf_calls"] for f in faulty)
    print(f"injected faults, Prism side (PrismFaults.injected, in-process emulators): {sum(pi.values())} of {pc} "
          f"requests = {sum(pi.values()) / max(1, pc):.2%} ({_kinds(pi)})")
    print(f"injected faults, CloudForet side (CloudForetFaults.injected, emulator child): {sum(ci.values())} of "
          f"{cc} calls = {sum(ci.values()) / max(1, cc):.2%} ({_kinds(ci)})")
    print(f"retries, the pipeline's Beam counters summed over runs: {dict(rt) or 'none'} (prism.retries: Prism "
          "calls retried; *.records_retried: records the sinks wrote again; cloudforet.call_retries: lookups "
          "retried; reconcile, registration and the notification retry without a counter)")
    if failed:
        bar = "!" * 78
        print(f"{bar}\n!! SOAK FAILED: a final-state diff is not empty or a run did not succeed (see above)\n{bar}",
              flush=True)
        sys.exit(1)
    print("final-state diff empty after every run: OK")


if __name__ == "__main__":
    main(sys.argv[1:])
