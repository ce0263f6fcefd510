"""The demo's collector job: CloudForet's Inventory runs the collector plugin, as operators see it.

    python -m emulators.collector_demo --cloudforet-ready F --plugin-ready F --prism-ready F [--jobs N]

registers a Collector with the plugin's endpoint, runs N jobs over the service
accounts ``pipeline setup`` made and prints each Job and its JobTasks as the
console's collector history lists them. The plugin option ``account_names``
names each Prism Central's records as the pipeline's config does, so the
collector takes over the records the pipeline wrote (updated, not created again).

Everything goes through the public API with the real stubs (Collector.create,
Collector.collect, Job.get, JobTask.list, ServiceAccount.list). Collect is
asynchronous on a real Inventory too: the client asks ``Job.get`` until the
job has ended.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import grpc
from spaceone.api.identity.v2 import service_account_pb2, service_account_pb2_grpc
from spaceone.api.inventory.v1 import (
    collector_pb2,
    collector_pb2_grpc,
    job_pb2,
    job_pb2_grpc,
    job_task_pb2,
    job_task_pb2_grpc,
)

PROVIDER = "nutanix"
COLUMNS = ("SERVICE ACCOUNT", "STATUS", "CREATED", "UPDATED", "FAILURE", "DELETED", "DISCONNECTED")


def account_names(prism: dict) -> dict[str, str]:
    """Prism Central address (as the plugin names it: host, and :port when not 9440) -> the config's name."""
    return {(pc["host"] if int(pc["port"]) == 9440 else f"{pc['host']}:{pc['port']}"): pc["name"]
            for pc in prism["prism_centrals"]}


def job_table(job: job_pb2.JobInfo, tasks: list, names: dict[str, str]) -> str:
    status = job_pb2.JobInfo.Status.Name
    lines = [f"Job {job.job_id}  {status(job.status)}  tasks {job.success_tasks} succeeded, "
             f"{job.failure_tasks} failed of {job.total_tasks}  created {job.created_at}  finished {job.finished_at}"]
    rows = [COLUMNS] + [(names.get(t.service_account_id, t.service_account_id),
                         job_task_pb2.JobTaskInfo.JobTaskStatus.Name(t.status), t.created_count, t.updated_count,
                         t.failure_count, t.deleted_count, t.disconnected_count) for t in tasks]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(COLUMNS))]
    for row in rows:
        lines.append("  " + "  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w)
                                      for i, (v, w) in enumerate(zip(row, widths))))
    for t in tasks:
        for e in t.errors[:3]:
            lines.append(f"  ! {names.get(t.service_account_id, t.service_account_id)}: {e.error_code}: "
                         f"{e.message[:200]}")
    return "\n".join(lines)


def run(cloudforet: dict, plugin_endpoint: str, names_by_address: dict[str, str], jobs: int,
        timeout_s: float = 300.0) -> int:
    token = next(iter(cloudforet["app_tokens"].values()))
    md = (("token", token),)
    channel = grpc.insecure_channel(cloudforet["endpoint"])
    collectors = collector_pb2_grpc.CollectorStub(channel)
    request = collector_pb2.CreateCollectorRequest(
        name="Nutanix Prism Central", provider=PROVIDER,
        plugin_info=collector_pb2.PluginInfo(plugin_id="plugin-nutanix-inven-collector", version="1.0"),
        schedule=collector_pb2.Scheduled(state=collector_pb2.Scheduled.ENABLED, hours=[2, 14]))
    request.plugin_info.options.update({"endpoint": plugin_endpoint, "vms_per_task": 100,
                                        "account_names": names_by_address})
    collector = collectors.create(request, metadata=md)
    accounts = service_account_pb2_grpc.ServiceAccountStub(channel).list(
        service_account_pb2.ServiceAccountSearchQuery(provider=PROVIDER), metadata=md).results
    names = {a.service_account_id: a.name for a in accounts}
    print(f"Collector {collector.collector_id} ({collector.name}), plugin at {plugin_endpoint}, "
          f"{len(names)} service accounts of provider {PROVIDER}")
    failed = 0
    for _ in range(jobs):
        job = collectors.collect(collector_pb2.CollectRequest(collector_id=collector.collector_id), metadata=md)
        deadline = time.monotonic() + timeout_s
        while job.status == job_pb2.JobInfo.IN_PROGRESS and time.monotonic() < deadline:
            time.sleep(0.2)  # a client of a remote Inventory has only Job.get to watch
            job = job_pb2_grpc.JobStub(channel).get(job_pb2.JobRequest(job_id=job.job_id), metadata=md)
        tasks = job_task_pb2_grpc.JobTaskStub(channel).list(
            job_task_pb2.JobTaskQuery(job_id=job.job_id), metadata=md).results
        print(job_table(job, sorted(tasks, key=lambda t: names.get(t.service_account_id, "")), names))
        failed += job.status != job_pb2.JobInfo.SUCCESS
    channel.close()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emulators.collector_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--cloudforet-ready", required=True)
    ap.add_argument("--plugin-ready", required=True)
    ap.add_argument("--prism-ready", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    ready = {}
    for key in ("cloudforet_ready", "plugin_ready", "prism_ready"):
        with open(getattr(args, key)) as fh:
            ready[key] = json.load(fh)
    return run(ready["cloudforet_ready"], ready["plugin_ready"]["endpoint"], account_names(ready["prism_ready"]),
               args.jobs)


if __name__ == "__main__":
    sys.exit(main())
