"""One gRPC server hosting both data-source plugins (monitoring and cost_analysis).

The two protocols declare services with the same short names (DataSource)
but different packages, so both register on one server without clashing.
"""
from __future__ import annotations

import os
from concurrent import futures

import grpc
from spaceone.api.cost_analysis.plugin import cost_pb2_grpc, job_pb2_grpc
from spaceone.api.cost_analysis.plugin import data_source_pb2_grpc as cost_ds_grpc
from spaceone.api.monitoring.plugin import data_source_pb2_grpc as mon_ds_grpc
from spaceone.api.monitoring.plugin import metric_pb2_grpc

from .cost import CostData, CostDataSource, CostJob
from .cost_store import CostStore
from .metric_store import MetricStore
from .monitoring import MonitoringDataSource, MonitoringMetric

MAX_MESSAGE = 256 * 1024 * 1024
GRPC_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]


def store_paths(store: str | None, metric_store: str | None = None, cost_store: str | None = None) -> tuple[str, str]:
    """``--store DIR`` means DIR/metrics and DIR/costs (the pipeline's out/metrics and its sibling)."""
    if not (metric_store and cost_store) and not store:
        raise ValueError("give --store DIR or both --metric-store and --cost-store")
    return (metric_store or os.path.join(store or "", "metrics"),
            cost_store or os.path.join(store or "", "costs"))


class PluginServer:
    """Monitoring + cost data-source plugin on ``host:port`` (port 0: a free port)."""

    def __init__(self, metric_root: str, cost_root: str, host: str = "127.0.0.1", port: int = 0,
                 max_workers: int = 8) -> None:
        self.metrics, self.costs = MetricStore(metric_root), CostStore(cost_root)
        self.host, self.port, self.max_workers = host, port, max_workers
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "PluginServer":
        server = grpc.server(futures.ThreadPoolExecutor(self.max_workers, thread_name_prefix="plugin"),
                             options=GRPC_OPTIONS)
        mon_ds_grpc.add_DataSourceServicer_to_server(MonitoringDataSource(self.metrics), server)
        metric_pb2_grpc.add_MetricServicer_to_server(MonitoringMetric(self.metrics), server)
        cost_ds_grpc.add_DataSourceServicer_to_server(CostDataSource(self.costs), server)
        job_pb2_grpc.add_JobServicer_to_server(CostJob(self.costs), server)
        cost_pb2_grpc.add_CostServicer_to_server(CostData(self.costs), server)
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

    def __enter__(self) -> "PluginServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
