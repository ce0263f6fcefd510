"""cost_analysis.plugin servicers: DataSource.init/verify, Job.get_tasks, Cost.get_data over the cost store."""
from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from google.protobuf.json_format import MessageToDict
from spaceone.api.cost_analysis.plugin import (
    cost_pb2,
    cost_pb2_grpc,
    data_source_pb2,
    data_source_pb2_grpc,
    job_pb2,
    job_pb2_grpc,
)

from .cost_store import CostStore, normalize_day, plan
from .errors import PluginError, invalid, streaming, unary
from .store_options import StoreChoice, choice

BATCH = 1000
DEFAULT_CURRENCY = "USD"


def _dict(msg, field: str) -> dict:
    return MessageToDict(getattr(msg, field)) if msg.HasField(field) else {}


COST_STORE_OPTION = "cost_store"


def cost_stores(store: "CostStore | StoreChoice[CostStore] | None") -> StoreChoice[CostStore]:
    """The cost store of a call: options ``store``/``cost_store`` (see store_options), else ``store``."""
    return choice(store, CostStore, "costs", COST_STORE_OPTION)


def metadata(currency: str) -> dict:
    return {
        "currency": currency,
        "supported_secret_types": ["MANUAL"],
        "data_source_rules": [{
            "name": "match_service_account",
            "conditions_policy": "ALWAYS",
            "actions": {"match_service_account": {"source": "additional_info.Account", "target": "name"}},
            "options": {"stop_processing": True},
        }],
    }


class CostDataSource(data_source_pb2_grpc.DataSourceServicer):
    def __init__(self, store: "CostStore | StoreChoice[CostStore] | None") -> None:
        self.stores = cost_stores(store)

    @unary("DataSource.init")
    def init(self, request: data_source_pb2.InitRequest) -> data_source_pb2.PluginInfo:
        options = _dict(request, "options")
        currency = str(options.get("currency") or self.stores.of(options).currency() or DEFAULT_CURRENCY)
        info = data_source_pb2.PluginInfo()
        info.metadata.update(metadata(currency))
        return info

    @unary("DataSource.verify")
    def verify(self, request: data_source_pb2.PluginVerifyRequest) -> empty_pb2.Empty:
        store = self.stores.of(_dict(request, "options"))
        if not store.exists():
            raise PluginError(grpc.StatusCode.FAILED_PRECONDITION,
                              f"ERROR_PLUGIN_VERIFY: cost store {store.root} does not exist")
        return empty_pb2.Empty()


class CostJob(job_pb2_grpc.JobServicer):
    def __init__(self, store: "CostStore | StoreChoice[CostStore] | None") -> None:
        self.stores = cost_stores(store)

    @unary("Job.get_tasks")
    def get_tasks(self, request: job_pb2.GetTasksRequest) -> job_pb2.TasksInfo:
        options = _dict(request, "options")
        tasks, changed = plan(self.stores.of(options), request.start, request.last_synchronized_at,
                              str(options.get("changed_granularity", "MONTH")).upper())
        out = job_pb2.TasksInfo()
        for task in tasks:
            t = out.tasks.add()
            t.task_options.update(task["task_options"])
            t.task_changed.start, t.task_changed.end = task["task_changed"]["start"], task["task_changed"]["end"]
        for window in changed:
            out.changed.add(start=window["start"], end=window["end"])
        return out


class CostData(cost_pb2_grpc.CostServicer):
    def __init__(self, store: "CostStore | StoreChoice[CostStore] | None") -> None:
        self.stores = cost_stores(store)

    @unary("Cost.get_linked_accounts")
    def get_linked_accounts(self, request: cost_pb2.GetLinkedAccountsRequest) -> cost_pb2.AccountsInfo:
        return cost_pb2.AccountsInfo()

    @streaming("Cost.get_data")
    def get_data(self, request: cost_pb2.GetDataRequest):
        task = _dict(request, "task_options")
        first = normalize_day(str(task.get("start", "")), "task_options.start")
        last = normalize_day(str(task.get("end", "")), "task_options.end") or first
        if not first:
            raise invalid("task_options.start is required (YYYY-MM-DD, from Job.get_tasks)")
        if last < first:
            raise invalid(f"task_options.end ({last}) is before start ({first})")
        batch = cost_pb2.CostsInfo()
        for record in self.stores.of(_dict(request, "options")).records(first, last):
            c = batch.results.add()
            for key in ("cost", "usage_quantity"):
                setattr(c, key, float(record[key]))
            for key in ("usage_unit", "provider", "region_code", "product", "usage_type", "resource",
                        "billed_date"):
                setattr(c, key, record[key])
            for key in ("tags", "additional_info", "data"):
                getattr(c, key).SetInParent()
                getattr(c, key).update(record[key])
            if len(batch.results) >= BATCH:
                yield batch
                batch = cost_pb2.CostsInfo()
        if batch.results:
            yield batch
