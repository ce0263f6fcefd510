"""The emulator process object: one gRPC server hosting every service, and
(``per_service``) one more server per service, as a real deployment serves
them: each on its own address, answering UNIMPLEMENTED for the others.

All state lives in the SQLite file at ``db_path`` (including the token
signing key), so a new emulator on the same file continues where the last
one stopped and previously issued tokens stay valid.
"""
from __future__ import annotations

from concurrent import futures
from typing import TYPE_CHECKING, Callable, cast

import grpc
from spaceone.api.cost_analysis.v1 import cost_pb2_grpc
from spaceone.api.cost_analysis.v1 import data_source_pb2_grpc as cost_data_source_pb2_grpc
from spaceone.api.identity.v2 import (
    endpoint_pb2_grpc,
    project_pb2_grpc,
    provider_pb2_grpc,
    schema_pb2_grpc,
    service_account_pb2_grpc,
    token_pb2_grpc,
)
from spaceone.api.inventory.v1 import (
    cloud_service_pb2_grpc,
    cloud_service_type_pb2_grpc,
    metric_data_pb2_grpc,
    metric_pb2_grpc,
    namespace_pb2_grpc,
    region_pb2_grpc,
)
from spaceone.api.monitoring.v1 import data_source_pb2_grpc as monitoring_data_source_pb2_grpc
from spaceone.api.monitoring.v1 import metric_pb2_grpc as monitoring_metric_pb2_grpc
from spaceone.api.notification.v1 import notification_pb2_grpc
from spaceone.api.secret.v1 import secret_pb2_grpc

from . import auth
from .base import Backend
from .config import EmulatorConfig
from .cost_analyze import CostAnalysisCostService
from .cost_datasource_service import CostDataSourceService
from .identity_service import (
    EndpointService,
    ProjectService,
    ProviderService,
    SchemaService,
    ServiceAccountService,
    TokenService,
)
from .inventory_service import CloudServiceService, CloudServiceTypeService, RegionService
from .metric_explorer_service import MetricDataService, MetricService, NamespaceService
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
        per_service: bool = False,
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
        self.per_service = per_service
        self.service_ports: dict[str, int] = {}  # service -> port of its own server (per_service)
        self._service_servers: list[grpc.Server] = []

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def endpoints(self) -> dict[str, str]:
        """Each service's own address (``per_service``), keyed as ``cloudforet.endpoints``."""
        return {service: f"{self.host}:{port}" for service, port in sorted(self.service_ports.items())}

    def published_endpoints(self) -> list[dict]:
        """identity's ENDPOINTS global as configured (``"self"``: this emulator's own)."""
        published = self.config.published_endpoints
        if published != "self":
            return list(cast("list[dict]", published) or [])  # "self" is the one string it means
        scheme = "grpc+ssl" if self.server_credentials is not None else "grpc"
        return [{"service": service.replace("_", "-"), "name": f"{service} service",
                 "endpoint": f"{scheme}://{address}", "state": "ACTIVE"}
                for service, address in self.endpoints.items()]

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
        plugins = PluginStore(backend.store)
        services = self._services(backend, plugins)
        server = grpc.server(executor)
        for servicers in services.values():
            for add, servicer in servicers:
                add(servicer, server)
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
        if self.per_service:
            self._start_service_servers(services, executor)
        return self

    def _services(self, backend: Backend, plugins: PluginStore) -> dict[str, list]:
        """Each service's servicers, keyed as ``cloudforet.endpoints`` keys."""
        return {
            "identity": [(token_pb2_grpc.add_TokenServicer_to_server, TokenService(backend)),
                         (service_account_pb2_grpc.add_ServiceAccountServicer_to_server,
                          ServiceAccountService(backend)),
                         (endpoint_pb2_grpc.add_EndpointServicer_to_server,
                          EndpointService(backend, self.published_endpoints)),
                         (project_pb2_grpc.add_ProjectServicer_to_server, ProjectService(backend)),
                         (provider_pb2_grpc.add_ProviderServicer_to_server, ProviderService(backend)),
                         (schema_pb2_grpc.add_SchemaServicer_to_server, SchemaService(backend))],
            "secret": [(secret_pb2_grpc.add_SecretServicer_to_server, SecretService(backend))],
            "inventory": [(cloud_service_pb2_grpc.add_CloudServiceServicer_to_server, CloudServiceService(backend)),
                          (cloud_service_type_pb2_grpc.add_CloudServiceTypeServicer_to_server,
                           CloudServiceTypeService(backend)),
                          (region_pb2_grpc.add_RegionServicer_to_server, RegionService(backend)),
                          # Metric Explorer
                          (namespace_pb2_grpc.add_NamespaceServicer_to_server, NamespaceService(backend)),
                          (metric_pb2_grpc.add_MetricServicer_to_server, MetricService(backend)),
                          (metric_data_pb2_grpc.add_MetricDataServicer_to_server, MetricDataService(backend))],
            "cost_analysis": [(cost_pb2_grpc.add_CostServicer_to_server, CostAnalysisCostService(backend)),
                              (cost_data_source_pb2_grpc.add_DataSourceServicer_to_server,
                               CostDataSourceService(backend, plugins))],
            # Data-source plugins: monitoring and cost_analysis pull from registered plugins.
            "monitoring": [(monitoring_data_source_pb2_grpc.add_DataSourceServicer_to_server,
                            MonitoringDataSourceService(backend, plugins)),
                           (monitoring_metric_pb2_grpc.add_MetricServicer_to_server,
                            MonitoringMetricService(backend))],
            "notification": [(notification_pb2_grpc.add_NotificationServicer_to_server,
                              NotificationService(backend))],
        }

    def _start_service_servers(self, services: dict[str, list], executor: futures.ThreadPoolExecutor) -> None:
        for service, servicers in services.items():
            server = grpc.server(executor)
            for add, servicer in servicers:
                add(servicer, server)
            address = f"{self.host}:{self.service_ports.get(service, 0)}"
            bound = (server.add_secure_port(address, self.server_credentials) if self.server_credentials
                     else server.add_insecure_port(address))
            if not bound:
                raise RuntimeError(f"could not bind {address} for the {service} service")
            server.start()
            self.service_ports[service] = bound
            self._service_servers.append(server)

    def stop(self, grace: float | None = 0) -> None:
        """Stop serving and close the database; safe to call twice."""
        server, backend, executor = self._server, self._backend, self._executor
        self._server = self._executor = None
        for extra in self._service_servers:
            extra.stop(grace).wait()
        self._service_servers = []
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

    def restart(self, down: float = 0.0, grace: float | None = 0,
                on_down: Callable[[], None] | None = None) -> "CloudForetEmulator":
        """Stop, stay down ``down`` seconds, start again on the same port and database
        (state and the token signing key survive, as across a real server restart).
        ``on_down`` is called once the server has stopped, so a test can act while it is down."""
        import time

        if self._server is None:
            raise RuntimeError("emulator is not started")
        self.stop(grace)
        if on_down is not None:
            on_down()
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
        if app["role_type"] == "DOMAIN_ADMIN":  # an App of resource_group DOMAIN: domain scope for good
            return self.signer.issue(app_id, auth.CLIENT_SECRET, auth.SCOPE_DOMAIN, "DOMAIN_ADMIN", cfg.domain_id,
                                     "", auth.APP_TOKEN_TTL)
        return self.signer.issue(app_id, auth.CLIENT_SECRET, auth.SCOPE_WORKSPACE, str(app["role_type"]),
                                 cfg.domain_id, cfg.workspace_id, auth.APP_TOKEN_TTL)

    def __enter__(self) -> "CloudForetEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
