"""The collector plugin run by Inventory beside a first push-mode pipeline run, same fleet, one run.

    python -m benchmarks collector_plugin [--vms 10000] [--latency-ms 5]

Both paths collect the same emulated fleet (2 Prism Centrals, served in this
process, whose request handler stamps the first call) into a fresh CloudForet
emulator of their own (a separate process, ``--latency-ms`` added to every call
it receives):

- plugin: a Collector registered with ``python -m plugin collector`` (its own
  process) and one ``Collector.collect``: Inventory asks the plugin for each
  service account's tasks, runs the sub-tasks on its workers and upserts every
  ResourceInfo (no call per record: the real Inventory writes its own
  database);
- pipeline: ``python -m pipeline`` (push mode: every cloud service a
  CloudService call, costs to the cost store, no snapshot), as ``harness``
  configures it.

Each is timed from its first Prism call to its last upsert (the newest
``updated_at`` its CloudForet stamped), so the pipeline's Beam start-up is not
counted against it; the record counts of both are printed and must agree.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import grpc
import yaml
from spaceone.api.inventory.v1 import collector_pb2, collector_pb2_grpc, job_pb2, job_pb2_grpc

from benchmarks.harness import (
    PRISM_PASSWORD,
    ROOT,
    _wait_ready,
    run_pipeline,
    stop_processes,
    tempdir,
    write_config,
)
from emulators.plugins import plugin_images, register
from emulators.prism.fleet import FleetSpec, generate_fleet
from emulators.prism.server import PrismServer


class StampedPrism(PrismServer):
    """A Prism Central that remembers when it was first called after ``mark()``."""

    def mark(self) -> None:
        self.first_call: float | None = None

    def _dispatch(self, method, raw_path, headers, body):
        if getattr(self, "first_call", 0) is None:
            self.first_call = time.time()
        return super()._dispatch(method, raw_path, headers, body)


def last_upsert(db: Path) -> tuple[float, int]:
    """(the newest updated_at of a cloud service, how many cloud services) in an emulator's SQLite."""
    with sqlite3.connect(db) as conn:
        newest, n = conn.execute("SELECT max(json_extract(doc, '$.updated_at')), count(*) FROM cloud_services"
                                 ).fetchone()
    return datetime.fromisoformat(newest.replace("Z", "+00:00")).timestamp(), n


def start(args: list[str], name: str, ready: Path, env: dict | None = None) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", *args, "--ready-file", str(ready)], cwd=ROOT,
                            env=env or dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, _wait_ready(ready, proc, name)


def plugin_run(work: Path, servers: list[StampedPrism], latency_ms: float, options: dict) -> dict:
    config = {"latency_ms": latency_ms,
              "secrets": {f"secret-{s.pc.name}": {"nutanix_host": s.host, "nutanix_port": s.port, "scheme": "http",
                                                  "nutanix_username": "admin", "nutanix_password": PRISM_PASSWORD}
                          for s in servers},
              "service_accounts": [{"service_account_id": f"sa-{s.pc.name}", "name": s.pc.name,
                                    "provider": "nutanix", "secret_id": f"secret-{s.pc.name}"} for s in servers],
              # the registry holds the collector image; its supervisor runs the process started below
              "plugin_images": plugin_images({"collector": str(work / "plugin.json")})}
    (work / "cf-config.yaml").write_text(yaml.safe_dump(config))
    procs: list[subprocess.Popen] = []
    try:
        cf_proc, cf = start(["emulators.cloudforet", "--db", str(work / "cf.sqlite"), "--port", "0", "--config",
                             str(work / "cf-config.yaml")], "CloudForet", work / "cf.json")
        procs.append(cf_proc)
        plugin_proc, _ = start(["plugin", "collector", "--port", "0"], "collector plugin",
                                    work / "plugin.json")
        procs.append(plugin_proc)
        channel = grpc.insecure_channel(cf["endpoint"])
        md = (("token", cf["app_tokens"]["app-nutanix-collector"]),)
        plugin_id = register(channel, cf["app_tokens"]["app-nutanix-setup"], ["collector"])["collector"]
        collectors = collector_pb2_grpc.CollectorStub(channel)
        request = collector_pb2.CreateCollectorRequest(name="Nutanix", provider="nutanix",
                                                       plugin_info=collector_pb2.PluginInfo(plugin_id=plugin_id))
        request.plugin_info.options.update(options)
        collector = collectors.create(request, metadata=md)
        for s in servers:
            s.mark()
        job = collectors.collect(collector_pb2.CollectRequest(collector_id=collector.collector_id), metadata=md)
        while job.status == job_pb2.JobInfo.IN_PROGRESS:
            time.sleep(0.2)  # Job.get is all a client of Inventory can watch
            job = job_pb2_grpc.JobStub(channel).get(job_pb2.JobRequest(job_id=job.job_id), metadata=md)
        channel.close()
        last, n = last_upsert(work / "cf.sqlite")
        first = min(s.first_call for s in servers if s.first_call)
        return {"seconds": last - first, "cloud_services": n, "status": job_pb2.JobInfo.Status.Name(job.status)}
    finally:
        stop_processes(procs)


def pipeline_run(work: Path, servers: list[StampedPrism], latency_ms: float) -> dict:
    procs: list[subprocess.Popen] = []
    try:
        cf_proc, cf = start(["emulators.cloudforet", "--db", str(work / "cf.sqlite"), "--port", "0",
                             "--latency-ms", str(latency_ms)], "CloudForet", work / "cf.json")
        procs.append(cf_proc)
        prism = {"prism_centrals": [{"name": s.pc.name, "host": s.host, "port": s.port} for s in servers]}
        config = write_config(work, prism, cf, cloudforet={"cost_mode": "datasource"},
                              snapshot={"enabled": False}, cost_store={"path": str(work / "costs")})
        for s in servers:
            s.mark()
        r = run_pipeline(config, cf)
        last, n = last_upsert(work / "cf.sqlite")
        first = min(s.first_call for s in servers if s.first_call)
        return {"seconds": last - first, "cloud_services": n, "wall_s": r["seconds"]}
    finally:
        stop_processes(procs)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks collector_plugin")
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--latency-ms", type=float, default=5.0, help="added to every call CloudForet receives")
    ap.add_argument("--vms-per-task", type=int, default=2000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    work = tempdir()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    spec = FleetSpec(prism_centrals=2, clusters=4, hosts_per_cluster=4, vms=args.vms, disks_per_vm=2)
    servers = [StampedPrism(pc, username="admin", password=PRISM_PASSWORD) for pc in generate_fleet(spec)]
    for s in servers:
        s.start()
    # the pipeline's Prism settings (harness.write_config), as plugin options
    options = {"vms_per_task": args.vms_per_task, "page_size": 500, "max_requests_per_s": 50, "max_concurrency": 8}
    print(f"fleet: {args.vms} VMs over 2 Prism Centrals, 4 clusters x 4 hosts, 2 disks/VM; CloudForet latency "
          f"{args.latency_ms} ms per call received; plugin options {json.dumps(options)}; work dir {work}")
    try:
        (work / "plugin").mkdir()
        (work / "pipeline").mkdir()
        plugin = plugin_run(work / "plugin", servers, args.latency_ms, options)
        pipeline = pipeline_run(work / "pipeline", servers, args.latency_ms)
    finally:
        for s in servers:
            s.stop()
    print(f"{'path':34} {'seconds':>8} {'cloud services':>15} {'per s':>8}")
    print(f"{'collector plugin (Inventory job)':34} {plugin['seconds']:8.1f} {plugin['cloud_services']:15d} "
          f"{plugin['cloud_services'] / plugin['seconds']:8.0f}   job {plugin['status']}")
    print(f"{'pipeline, first push-mode run':34} {pipeline['seconds']:8.1f} {pipeline['cloud_services']:15d} "
          f"{pipeline['cloud_services'] / pipeline['seconds']:8.0f}   (process wall {pipeline['wall_s']:.1f} s)")
    same = plugin["cloud_services"] == pipeline["cloud_services"]
    print(f"pipeline / plugin: {pipeline['seconds'] / plugin['seconds']:.2f}x (first Prism call to last upsert)"
          f"{'' if same else '  MISMATCH: the record counts differ'}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)

