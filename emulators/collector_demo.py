"""The demo's collector job: CloudForet's Inventory runs the collector plugin, as operators see it.

    python -m emulators.collector_demo --cloudforet-ready F [--jobs N]

runs N jobs of the Collector ``python -m pipeline setup --plugins`` created (its
plugin registered in the Repository, reached through the plugin service) and prints
each Job and its JobTasks as the console's collector history lists them (setup gives
the Collector the plugin option ``account_names``, naming each Prism Central's records
as the pipeline's config does, so the collector takes over the records the pipeline
wrote: updated, not created again).

Everything goes through the public API with the real stubs (Collector.list,
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

from pipeline.plugin_definitions import COLLECTOR_NAME
from schemas.identity import PROVIDER

COLUMNS = ("SERVICE ACCOUNT", "STATUS", "CREATED", "UPDATED", "FAILURE", "DELETED", "DISCONNECTED")


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


def run(cloudforet: dict, jobs: int, timeout_s: float = 300.0) -> int:
    token = next(iter(cloudforet["app_tokens"].values()))
    md = (("token", token),)
    channel = grpc.insecure_channel(cloudforet["endpoint"])
    collectors = collector_pb2_grpc.CollectorStub(channel)
    found = collectors.list(collector_pb2.CollectorQuery(name=COLLECTOR_NAME), metadata=md).results
    if not found:
        print(f"error: no Collector {COLLECTOR_NAME!r}: run python -m pipeline setup --config FILE --plugins first",
              file=sys.stderr)
        return 2
    collector = found[0]
    accounts = service_account_pb2_grpc.ServiceAccountStub(channel).list(
        service_account_pb2.ServiceAccountSearchQuery(provider=PROVIDER), metadata=md).results
    names = {a.service_account_id: a.name for a in accounts}
    print(f"Collector {collector.collector_id} ({collector.name}), plugin {collector.plugin_info.plugin_id} "
          f"{collector.plugin_info.version}, {len(names)} service accounts of provider {PROVIDER}")
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
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    with open(args.cloudforet_ready) as fh:
        cloudforet = json.load(fh)
    return run(cloudforet, args.jobs)

if __name__ == "__main__":
    sys.exit(main())
