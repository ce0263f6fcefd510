"""The emulator process object: one gRPC server hosting every service.

All state lives in the SQLite file at ``db_path`` (including the token
signing key), so a new emulator on the same file continues where the last
one stopped and previously issued tokens stay valid.
"""
from __future__ import annotations

from concurrent import futures
from typing import TYPE_CHECKING

import grpc
from spaceone.api.cost_analysis.v1 import cost_pb2_grpc
from spaceone.api.cost_analysis.v1 import data_source_pb2_grpc as cost_data_source_pb2_grpc
from spaceone.api.identity.v2 import service_account_pb2_grpc, token_pb2_grpc
from spaceone.api.inventory.v1 import cloud_service_pb2_grpc, cloud_service_type_pb2_grpc, region_pb2_grpc
from spaceone.api.monitoring.v1 import data_source_pb2_grpc as monitoring_data_source_pb2_grpc
from spaceone.api.monitoring.v1 import metric_pb2_grpc as monitoring_metric_pb2_grpc
from spaceone.api.notification.v1 import notification_pb2_grpc
from spaceone.api.secret.v1 import secret_pb2_grpc

from . import auth
from .base import Backend
from .config import EmulatorConfig
from .cost_analyze import CostAnalysisCostService
from .cost_datasource_service import CostDataSourceService
from .identity_service import ServiceAccountService, TokenService
from .inventory_service import CloudServiceService, CloudServiceTypeService, RegionService
from .monitoring_service import MonitoringDataSourceService, MonitoringMetricService
from .notification_service import NotificationService
from .plugin_store import PluginStore
from .secret_service import SecretService
from .store import Store

if TYPE_CHECKING:
    from .faults import CloudForetFaults


class CloudForetEmulator:
    """A CloudForet API subset on ``host:port`` (port 0 picks a free port)."""

    def __init__(
        self,
        db_path: str,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_workers: int = 32,
        server_credentials: grpc.ServerCredentials | None = None,
        faults: "CloudForetFaults | None" = None,
    ) -> None:
        self.db_path = db_path
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port
        self.max_workers = max_workers
        self.server_credentials = server_credentials
        self.faults = faults  # fault injection (emulators.cloudforet.faults), None: off
        self._backend: Backend | None = None
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._plugins: PluginStore | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise RuntimeError("emulator is not started")
        return self._backend

    @property
    def store(self) -> Store:
        return self.backend.store

    @property
    def signer(self) -> auth.TokenSigner:
        """The token signer, e.g. for tests that need an expired token."""
        return self.backend.signer

    def start(self) -> "CloudForetEmulator":
        if self._server is not None:
            raise RuntimeError("emulator already started")
        backend = Backend.open(self.db_path, self.config)
        backend.faults = self.faults
        if self.faults is not None:
            self.faults.attach(self)
        executor = futures.ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="cloudforet-emu")
        server = grpc.server(executor)
        token_pb2_grpc.add_TokenServicer_to_server(TokenService(backend), server)
        service_account_pb2_grpc.add_ServiceAccountServicer_to_server(ServiceAccountService(backend), server)
        secret_pb2_grpc.add_SecretServicer_to_server(SecretService(backend), server)
        cloud_service_pb2_grpc.add_CloudServiceServicer_to_server(CloudServiceService(backend), server)
        cloud_service_type_pb2_grpc.add_CloudServiceTypeServicer_to_server(CloudServiceTypeService(backend), server)
        region_pb2_grpc.add_RegionServicer_to_server(RegionService(backend), server)
        cost_pb2_grpc.add_CostServicer_to_server(CostAnalysisCostService(backend), server)
        # Data-source plugins: monitoring and cost_analysis pull from registered plugins.
        plugins = PluginStore(backend.store)
        monitoring_data_source_pb2_grpc.add_DataSourceServicer_to_server(
            MonitoringDataSourceService(backend, plugins), server)
        monitoring_metric_pb2_grpc.add_MetricServicer_to_server(MonitoringMetricService(backend), server)
        cost_data_source_pb2_grpc.add_DataSourceServicer_to_server(CostDataSourceService(backend, plugins), server)
        notification_pb2_grpc.add_NotificationServicer_to_server(NotificationService(backend), server)
        address = f"{self.host}:{self.port}"
        try:
            if self.server_credentials is not None:
                bound = server.add_secure_port(address, self.server_credentials)
            else:
                bound = server.add_insecure_port(address)
        except RuntimeError:
            executor.shutdown(wait=False)
            plugins.close()
            backend.store.close()
            raise
        if not bound:
            executor.shutdown(wait=False)
            plugins.close()
            backend.store.close()
            raise RuntimeError(f"could not bind {address}")
        self.port = bound
        server.start()
        self._backend, self._server, self._executor = backend, server, executor
        self._plugins = plugins
        return self

    def stop(self, grace: float | None = 0) -> None:
        """Stop serving and close the database; safe to call twice."""
        server, backend, executor = self._server, self._backend, self._executor
        self._server = self._executor = None
        if server is not None:
            server.stop(grace).wait()
        if executor is not None:
            executor.shutdown(wait=True)  # no handler may touch the store after it is closed
        if self._plugins is not None:
            self._plugins.close()
            self._plugins = None
        if backend is not None:
            backend.store.close()
            self._backend = None

    def restart(self, down: float = 0.0, grace: float | None = 0) -> "CloudForetEmulator":
        """Stop, stay down ``down`` seconds, start again on the same port and database
        (state and the token signing key survive, as across a real server restart)."""
        import time

        if self._server is None:
            raise RuntimeError("emulator is not started")
        self.stop(grace)
        time.sleep(down)
        return self.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server terminates (or timeout)."""
        return self._server.wait_for_termination(timeout) if self._server else True

    def app_token(self, app_id: str = "app-nutanix-collector") -> str:
        """A fresh CLIENT_SECRET token for a configured app (valid 365 days)."""
        app = self.config.app(app_id)
        if app is None:
            raise KeyError(f"unknown app_id {app_id!r}")
        cfg = self.config
        return self.signer.issue(app_id, auth.CLIENT_SECRET, auth.SCOPE_WORKSPACE, str(app["role_type"]),
                                 cfg.domain_id, cfg.workspace_id, auth.APP_TOKEN_TTL)

    def __enter__(self) -> "CloudForetEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
