"""inventory.plugin servicers: Collector.init/verify/collect and Job.get_tasks.

Inventory calls them through spaceone-core's SpaceConnector (inventory
``manager/collector_plugin_manager.py``: ``init_plugin`` {options},
``verify_plugin`` {options, secret_data}, ``collect`` {options, secret_data,
filter, task_options}, ``get_tasks`` {options, secret_data}), bound by short
name after gRPC reflection, which is why this protocol has a server of its own
(``plugin/collector/server.py``).
"""
from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from google.protobuf.json_format import MessageToDict
from spaceone.api.inventory.plugin import collector_pb2, collector_pb2_grpc, job_pb2, job_pb2_grpc

from connectors.clock import SYSTEM_CLOCK, Clock
from connectors.errors import ConnectorError, PrismAuthError, PrismError
from transforms.common.credentials import CredentialError

from ..errors import PluginError, invalid, streaming, unary
from . import resources, tasks

CONCURRENCY = 4  # JobTasks of one job Inventory runs at once (collecting manager _check_concurrency)


def _dict(msg, field: str) -> dict:
    return MessageToDict(getattr(msg, field), preserving_proto_field_name=True) if msg.HasField(field) else {}


def metadata() -> dict:
    """What Collector.init answers (stored by Inventory as the collector's plugin_info.metadata)."""
    return {
        "supported_resource_type": resources.SUPPORTED_RESOURCE_TYPES,
        "supported_schedules": ["hours"],
        "supported_features": ["garbage_collection"],
        "filter_format": [],
        "concurrency": CONCURRENCY,
        "options_schema": {
            "type": "object",
            "properties": {
                "vms_per_task": {"type": "integer", "minimum": 1, "default": tasks.DEFAULT_VMS_PER_TASK,
                                 "title": "VMs per task (a large Prism Central is collected in several tasks)"},
                "range_margin": {"type": "integer", "minimum": 0, "default": tasks.DEFAULT_RANGE_MARGIN,
                                 "title": "VMs read beyond each end of a task's range (moves during a run)"},
                "page_size": {"type": "integer", "minimum": 1, "default": 500, "title": "Prism page size"},
                "max_requests_per_s": {"type": "number", "exclusiveMinimum": 0, "default": 20,
                                       "title": "Requests per second to one Prism Central (all its tasks)"},
                "max_concurrency": {"type": "integer", "minimum": 1, "default": 8,
                                    "title": "Pages in flight per task"},
                "ca_bundle": {"type": "string", "title": "CA bundle (PEM path in the plugin's container) "
                              "of Prism Centrals with a private CA"},
                "account_names": {"type": "object", "additionalProperties": {"type": "string"},
                                  "title": "Account name per Prism Central address, host or host:port "
                                           "(default: the address)"},
            },
        },
    }


def _plugin_error(exc: Exception) -> PluginError:
    """A clear error for Inventory (its words reach the JobTask's errors); never the secret's values."""
    if isinstance(exc, (CredentialError, ValueError)):
        return invalid(str(exc))
    if isinstance(exc, PrismAuthError):
        return PluginError(grpc.StatusCode.UNAUTHENTICATED, f"ERROR_AUTHENTICATE_FAILURE: {exc}")
    if isinstance(exc, PrismError):
        return PluginError(grpc.StatusCode.UNAVAILABLE, f"ERROR_PRISM_UNAVAILABLE: {exc}")
    return PluginError(grpc.StatusCode.INTERNAL, f"ERROR_PLUGIN_INTERNAL: {exc}")


class CollectorService(collector_pb2_grpc.CollectorServicer):
    def __init__(self, runs: tasks.Runs = tasks.RUNS, clock: Clock = SYSTEM_CLOCK) -> None:
        self.runs = runs
        self.clock = clock  # the stats window ends at its now

    @unary("Collector.init")
    def init(self, request: collector_pb2.InitRequest) -> collector_pb2.PluginInfo:
        options = _dict(request, "options")
        try:
            tasks.prism_options(options)
            tasks.vms_per_task(options)
            tasks.range_margin(options)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        info = collector_pb2.PluginInfo()
        info.metadata.update(metadata())
        return info

    @unary("Collector.verify")
    def verify(self, request: collector_pb2.VerifyRequest) -> empty_pb2.Empty:
        try:
            tasks.login_check(_dict(request, "secret_data"), _dict(request, "options"))
        except (ConnectorError, ValueError) as exc:
            raise _plugin_error(exc) from None
        return empty_pb2.Empty()

    @streaming("Collector.collect")
    def collect(self, request: collector_pb2.CollectRequest):
        try:
            collection = tasks.Collection(_dict(request, "secret_data"), _dict(request, "options"),
                                          _dict(request, "task_options"), self.runs, self.clock)
            yield from collection.stream()
        except (ConnectorError, ValueError) as exc:
            raise _plugin_error(exc) from None


class JobService(job_pb2_grpc.JobServicer):
    @unary("Job.get_tasks")
    def get_tasks(self, request: job_pb2.GetTaskRequest) -> job_pb2.TasksInfo:
        try:
            planned = tasks.plan(_dict(request, "secret_data"), _dict(request, "options"))
        except (ConnectorError, ValueError) as exc:
            raise _plugin_error(exc) from None
        out = job_pb2.TasksInfo()
        for task_options in planned:
            out.tasks.add().task_options.update(task_options)
        return out
