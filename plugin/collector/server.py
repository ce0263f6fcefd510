"""The collector plugin's own gRPC server (Collector, Job) with server reflection.

A server of its own, like every plugin protocol (``plugin/server.py``): the
inventory plugin's ``Job`` would collide by short name with cost-analysis's.
"""
from __future__ import annotations

import grpc
from spaceone.api.inventory.plugin import collector_pb2, collector_pb2_grpc, job_pb2, job_pb2_grpc

from connectors.clock import SYSTEM_CLOCK, Clock

from ..server import _full_name, _ProtocolServer
from .service import CollectorService, JobService
from .tasks import RUNS, Runs

COLLECTOR_SERVICES = (_full_name(collector_pb2, "Collector"), _full_name(job_pb2, "Job"))


class CollectorPluginServer(_ProtocolServer):
    """The inventory collector plugin (Collector, Job): reads Prism live with the secret Inventory passes."""

    protocol = "collector"
    services = COLLECTOR_SERVICES

    def __init__(self, runs: Runs = RUNS, clock: Clock = SYSTEM_CLOCK, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs, self.clock = runs, clock

    def _add_servicers(self, server: grpc.Server) -> None:
        collector_pb2_grpc.add_CollectorServicer_to_server(CollectorService(self.runs, self.clock), server)
        job_pb2_grpc.add_JobServicer_to_server(JobService(), server)
