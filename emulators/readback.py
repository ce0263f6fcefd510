"""Read back, through CloudForet's own APIs, what the pipeline wrote and the plugin serves.

    python -m emulators.readback --cloudforet-ready FILE [--date YYYY-MM-DD] [--vm RESOURCE_ID]
        [--metric-store DIR] [--app-id ID]

Finds the monitoring and the cost data source ``python -m pipeline setup
--plugins`` registered (by plugin_info: CloudForet reaches the plugins
through its repository and plugin service), runs cost ``DataSource.sync``,
then prints cost per cluster
(``region_code``) for the day from ``Cost.analyze`` and one VM's CPU and
memory series from monitoring ``Metric.get_data``. Without ``--vm`` the first
VM of the metric store is used (``--metric-store``, default: the plugin's
``out/metrics``); without ``--date`` the newest billed day synced.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone

import grpc
import pyarrow.dataset as ds
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict, ParseDict
from spaceone.api.core.v2 import query_pb2
from spaceone.api.cost_analysis.v1 import cost_pb2, cost_pb2_grpc
from spaceone.api.cost_analysis.v1 import data_source_pb2 as cost_ds_pb2
from spaceone.api.cost_analysis.v1 import data_source_pb2_grpc as cost_ds_grpc
from spaceone.api.inventory.v1 import (
    cloud_service_pb2,
    cloud_service_pb2_grpc,
    cloud_service_type_pb2,
    cloud_service_type_pb2_grpc,
    metric_data_pb2,
    metric_data_pb2_grpc,
)
from spaceone.api.monitoring.v1 import data_source_pb2 as mon_ds_pb2
from spaceone.api.monitoring.v1 import data_source_pb2_grpc as mon_ds_grpc
from spaceone.api.monitoring.v1 import metric_pb2, metric_pb2_grpc

from pipeline.plugin_definitions import COST_DATA_SOURCE, MONITORING_DATA_SOURCE
from plugin.metric_store import MetricStore
from schemas.console import render_table

CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]


def _struct(d: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


class NotSetUp(Exception):
    """A data source setup --plugins registers is not there."""


def find_data_sources(ch: grpc.Channel, md: list) -> tuple[str, str]:
    """(monitoring data_source_id, cost data_source_id) of the data sources setup --plugins registered."""
    found = mon_ds_grpc.DataSourceStub(ch).list(mon_ds_pb2.DataSourceQuery(name=MONITORING_DATA_SOURCE), metadata=md)
    costs = cost_ds_grpc.DataSourceStub(ch).list(cost_ds_pb2.DataSourceQuery(name=COST_DATA_SOURCE), metadata=md)
    missing = [name for name, answer in ((MONITORING_DATA_SOURCE, found), (COST_DATA_SOURCE, costs))
               if not answer.results]
    if missing:
        raise NotSetUp(f"no data source {' or '.join(repr(m) for m in missing)} in CloudForet: register the "
                       "plugins and data sources first (python -m pipeline setup --config FILE --plugins)")
    return found.results[0].data_source_id, costs.results[0].data_source_id


def cost_per_cluster(ch: grpc.Channel, md: list, cost_ds_id: str, day: str) -> list[dict]:
    q = {"granularity": "DAILY", "start": day, "end": day, "group_by": ["region_code"],
         "fields": {"cost": {"key": "cost", "operator": "sum"}},
         "sort": [{"key": "region_code"}]}
    request = cost_pb2.CostAnalyzeQuery(data_source_id=cost_ds_id)
    ParseDict(q, request.query)
    answer = cost_pb2_grpc.CostStub(ch).analyze(request, metadata=md)
    return MessageToDict(answer).get("results", [])


def metric_figures(endpoint: str, token: str, metric_id: str, day: str, group_by: str = "labels.Cluster"
                   ) -> list[dict]:
    """One Metric Explorer figure as the console asks for it: inventory ``MetricData.analyze`` of a
    metric for one day (granularity DAILY, start = end = ``day``), its ``value`` summed per
    ``group_by`` (a label, e.g. ``labels.Cluster``): rows of {<label name>, date, value}.
    inventory service/metric_data_service.py ``analyze`` requires granularity, start, end, fields."""
    q = {"granularity": "DAILY", "start": day, "end": day, "group_by": [group_by],
         "fields": {"value": {"key": "value", "operator": "sum"}}, "sort": [{"key": "value", "desc": True}]}
    request = metric_data_pb2.MetricDataAnalyzeQuery(metric_id=metric_id)
    ParseDict(q, request.query)
    with grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS) as ch:
        answer = metric_data_pb2_grpc.MetricDataStub(ch).analyze(request, metadata=[("token", token)])
    return MessageToDict(answer).get("results", [])


def console_table(endpoint: str, token: str, group: str = "Compute", name: str = "Instance", rows: int = 5,
                  provider: str = "nutanix") -> str:
    """The Asset Inventory table of a type as the console builds it from what CloudForet holds: the
    CloudServiceType's registered ``metadata.view`` (CloudServiceType.list) over its cloud services
    (CloudService.list), rendered by schemas/console.py ``render_table``."""
    md = [("token", token)]
    with grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS) as ch:
        types = cloud_service_type_pb2_grpc.CloudServiceTypeStub(ch).list(
            cloud_service_type_pb2.CloudServiceTypeQuery(provider=provider, group=group, name=name), metadata=md)
        if not types.results:
            raise LookupError(f"CloudForet holds no CloudServiceType {provider}.{group}.{name}: run setup first")
        type_def = MessageToDict(types.results[0], preserving_proto_field_name=True)
        sort = type_def["metadata"]["view"]["table"]["layout"]["options"].get("default_sort")
        query = ParseDict({"filter": [{"k": k, "v": v, "o": "eq"} for k, v in (
            ("provider", provider), ("cloud_service_group", group), ("cloud_service_type", name))],
            "sort": [sort] if sort else [], "page": {"start": 1, "limit": rows}}, query_pb2.Query())
        services = cloud_service_pb2_grpc.CloudServiceStub(ch).list(  # the console's first page
            cloud_service_pb2.CloudServiceQuery(query=query), metadata=md)
    records = [MessageToDict(c, preserving_proto_field_name=True) for c in services.results]
    return render_table(type_def, records, rows=rows, total=services.total_count)


def newest_billed_date(ch: grpc.Channel, md: list, cost_ds_id: str) -> str:
    q = query_pb2.StatisticsQuery(distinct="billed_date")
    answer = MessageToDict(cost_pb2_grpc.CostStub(ch).stat(cost_pb2.CostStatQuery(query=q, data_source_id=cost_ds_id),
                                                          metadata=md))
    dates = answer.get("results", [])
    return max(dates) if dates else ""


def first_vm(metric_store: str) -> str:
    store = MetricStore(metric_store)
    days = store.days()
    if not days:
        return ""
    files = store.files(days[-1:])
    if not files:
        return ""
    table = ds.dataset(files[:1], format="parquet").head(1, columns=["resource_id"])
    return table["resource_id"][0].as_py() if table.num_rows else ""


def vm_series(ch: grpc.Channel, md: list, mon_ds_id: str, vm: str, day: str) -> dict[str, tuple[list, list]]:
    """metric -> (labels, values) of the VM for the day, 5-minute averages."""
    start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    out: dict[str, tuple[list, list]] = {}
    for metric in ("cpu.utilization", "memory.utilization"):
        answer = metric_pb2_grpc.MetricStub(ch).get_data(metric_pb2.MetricDataRequest(
            data_source_id=mon_ds_id, metric_query=_struct({vm: {}}), metric=metric,
            start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            end=(start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), period=300, stat="AVERAGE"),
            metadata=md)
        data = MessageToDict(answer)
        values = data.get("values", {})
        out[metric] = (data.get("labels", []), next(iter(values.values()), []))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.readback", description=__doc__.splitlines()[0])
    parser.add_argument("--cloudforet-ready", required=True, help="the CloudForet emulator's ready JSON file")
    parser.add_argument("--date", help="billed day (YYYY-MM-DD); default: the newest synced day")
    parser.add_argument("--vm", help="VM uuid (reference.resource_id); default: first VM in the metric store")
    parser.add_argument("--metric-store", default="out/metrics", help="to pick a VM when --vm is absent")
    parser.add_argument("--app-id", help="which app token of the ready file to use (default: the first)")
    args = parser.parse_args(argv)
    with open(args.cloudforet_ready, encoding="utf-8") as fh:
        ready = json.load(fh)
    tokens = ready["app_tokens"]
    token = tokens[args.app_id] if args.app_id else next(iter(tokens.values()))
    md = [("token", token)]
    with grpc.insecure_channel(ready["endpoint"], options=CHANNEL_OPTIONS) as ch:
        try:
            mon_id, cost_id = find_data_sources(ch, md)
        except NotSetUp as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        job = MessageToDict(cost_ds_grpc.DataSourceStub(ch).sync(
            cost_ds_pb2.SyncDataSourceRequest(data_source_id=cost_id), metadata=md),
            preserving_proto_field_name=True)
        print(f"cost sync {job.get('job_id')}: {job.get('status')} tasks={job.get('total_tasks', 0)} "
              f"changed={[(c.get('start'), c.get('end')) for c in job.get('changed', [])]}"
              + (f" error={job.get('error_message')}" if job.get("status") != "SUCCESS" else ""))
        day = args.date or newest_billed_date(ch, md, cost_id)
        print(f"\nCost per cluster (region_code) on {day or '-'}  [Cost.analyze, data source {cost_id}]")
        rows = cost_per_cluster(ch, md, cost_id, day) if day else []
        print(f"{'region_code':<40} {'cost':>14}")
        for row in rows:
            print(f"{row.get('region_code', ''):<40} {row.get('cost', 0.0):>14.2f}")
        print(f"{'TOTAL':<40} {sum(r.get('cost', 0.0) for r in rows):>14.2f}")
        vm = args.vm or first_vm(args.metric_store)
        if not vm:
            print("\nno VM in the metric store: no series to show")
            return 0
        series_day = day or datetime.now(timezone.utc).date().isoformat()
        series = vm_series(ch, md, mon_id, vm, series_day)
        print(f"\nVM {vm} on {series_day}, 5-minute AVERAGE  [Metric.get_data, data source {mon_id}]")
        labels = series["cpu.utilization"][0] or series["memory.utilization"][0]
        print(f"{'time (UTC)':<26} {'cpu.utilization %':>18} {'memory.utilization %':>21}")
        cpu, mem = series["cpu.utilization"][1], series["memory.utilization"][1]
        for i, label in enumerate(labels):
            c = cpu[i] if i < len(cpu) else None
            m = mem[i] if i < len(mem) else None
            if c is None and m is None:
                continue  # no point in that period (outside the collected window)
            print(f"{label:<26} {'-' if c is None else f'{c:.2f}':>18} {'-' if m is None else f'{m:.2f}':>21}")
        if not labels:
            print("(no points: is the VM known to inventory and in the metric store for that day?)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
