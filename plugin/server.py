"""One gRPC server per plugin protocol, each with server reflection.

CloudForet's servers call a plugin through spaceone-core's SpaceConnector
(spaceone-core 2.0.144, ``pygrpc/client.py`` ``GRPCClient._init_grpc_reflection``
and ``_bind_grpc_stub``): it lists the plugin's services by gRPC server
reflection and binds each by its SHORT name (``DataSource``, ``Metric``,
``Job``, ``Cost``). Monitoring's and cost-analysis's ``DataSource`` share a
short name, so each protocol needs a server (a port) of its own, and a server
without reflection cannot be called at all. Like spaceone-core's own plugin
server (``pygrpc/server.py`` ``GRPCServer.run``), reflection lists exactly the
services the server hosts.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent import futures

import grpc
from grpc_reflection.v1alpha import reflection
from spaceone.api.cost_analysis.plugin import cost_pb2, cost_pb2_grpc, job_pb2, job_pb2_grpc
from spaceone.api.cost_analysis.plugin import data_source_pb2 as cost_ds_pb2
from spaceone.api.cost_analysis.plugin import data_source_pb2_grpc as cost_ds_grpc
from spaceone.api.monitoring.plugin import data_source_pb2 as mon_ds_pb2
from spaceone.api.monitoring.plugin import data_source_pb2_grpc as mon_ds_grpc
from spaceone.api.monitoring.plugin import metric_pb2, metric_pb2_grpc

from .cost import CostData, CostDataSource, CostJob
from .cost_store import CostStore
from .metric_store import MetricStore
from .monitoring import MonitoringDataSource, MonitoringMetric

MAX_MESSAGE = 256 * 1024 * 1024
GRPC_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]


def _full_name(pb2_module, short_name: str) -> str:
    return pb2_module.DESCRIPTOR.services_by_name[short_name].full_name


MONITORING_SERVICES = (_full_name(mon_ds_pb2, "DataSource"), _full_name(metric_pb2, "Metric"))
COST_SERVICES = (_full_name(cost_ds_pb2, "DataSource"), _full_name(job_pb2, "Job"), _full_name(cost_pb2, "Cost"))


class _ProtocolServer(ABC):
    """A gRPC server on ``host:port`` (port 0: a free port) serving one plugin protocol with reflection."""

    protocol = ""
    services: tuple[str, ...] = ()

    def __init__(self, host: str = "127.0.0.1", port: int = 0, max_workers: int = 8) -> None:
        self.host, self.port, self.max_workers = host, port, max_workers
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @abstractmethod
    def _add_servicers(self, server: grpc.Server) -> None:
        ...

    def start(self):
        server = grpc.server(futures.ThreadPoolExecutor(self.max_workers, thread_name_prefix=f"plugin-{self.protocol}"),
                             options=GRPC_OPTIONS)
        self._add_servicers(server)
        reflection.enable_server_reflection(self.services, server)
        bound = server.add_insecure_port(f"{self.host}:{self.port}")
        if not bound:
            raise RuntimeError(f"could not bind {self.host}:{self.port}")
        self.port = bound
        server.start()
        self._server = server
        return self

    def stop(self, grace: float | None = 0) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MonitoringPluginServer(_ProtocolServer):
    """The monitoring data-source plugin (DataSource, Metric) over a metric store."""

    protocol = "monitoring"
    services = MONITORING_SERVICES

    def __init__(self, metric_root: str | None = None, **kwargs) -> None:
        """``metric_root``: the store of calls whose options name none (None: every call must)."""
        super().__init__(**kwargs)
        self.metrics = MetricStore(metric_root) if metric_root else None

    def _add_servicers(self, server: grpc.Server) -> None:
        mon_ds_grpc.add_DataSourceServicer_to_server(MonitoringDataSource(self.metrics), server)
        metric_pb2_grpc.add_MetricServicer_to_server(MonitoringMetric(self.metrics), server)


class CostPluginServer(_ProtocolServer):
    """The cost-analysis data-source plugin (DataSource, Job, Cost) over a cost store."""

    protocol = "cost"
    services = COST_SERVICES

    def __init__(self, cost_root: str | None = None, **kwargs) -> None:
        """``cost_root``: the store of calls whose options name none (None: every call must)."""
        super().__init__(**kwargs)
        self.costs = CostStore(cost_root) if cost_root else None

    def _add_servicers(self, server: grpc.Server) -> None:
        cost_ds_grpc.add_DataSourceServicer_to_server(CostDataSource(self.costs), server)
        job_pb2_grpc.add_JobServicer_to_server(CostJob(self.costs), server)
        cost_pb2_grpc.add_CostServicer_to_server(CostData(self.costs), server)
