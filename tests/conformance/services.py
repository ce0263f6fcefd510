"""The real identity and cost-analysis on loopback, and the CloudForet they are seeded with.

Each service runs from its own virtualenv (venvs.py) through launcher.py,
i.e. spaceone-core's ``spaceone run grpc-server`` with spaceone-core's own
authentication, authorization and mutation handlers. Everything is seeded
through the services' real RPCs (the ``spaceone-api`` stubs the collector uses).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import yaml
from google.protobuf import json_format, struct_pb2
from spaceone.api.cost_analysis.v1 import data_source_pb2, data_source_pb2_grpc
from spaceone.api.identity.v2 import (
    app_pb2,
    app_pb2_grpc,
    domain_pb2,
    domain_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    provider_pb2,
    provider_pb2_grpc,
    role_binding_pb2,
    role_binding_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    token_pb2,
    token_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
    workspace_pb2,
    workspace_pb2_grpc,
)
from spaceone.api.identity.v2.domain_pb2 import Admin  # noqa: E402 (the Admin of SystemInit and Domain.create)

from . import venvs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HANDLERS = {
    "authentication": [{"backend": "spaceone.core.handler.authentication_handler:SpaceONEAuthenticationHandler"}],
    "authorization": [{"backend": "spaceone.core.handler.authorization_handler:SpaceONEAuthorizationHandler"}],
    "mutation": [{"backend": "spaceone.core.handler.mutation_handler:SpaceONEMutationHandler"}],
}
PLUGIN_ID = "plugin-nutanix-cost"
READY_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def struct(d: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


def _service_conf(db: str, identity_port: int, token: str = "", extra_endpoints: dict | None = None) -> dict:
    return {
        "DATABASES": {"default": {"engine": "MongoModel", "host": "mongodb://127.0.0.1:27017", "db": db,
                                  "username": "conformance", "password": "conformance"}},
        "CACHES": {"default": {"backend": "spaceone.core.cache.redis_cache.RedisCache", "host": "127.0.0.1",
                               "port": 6379, "db": 0}},
        "HANDLERS": HANDLERS,
        "CONNECTORS": {"SpaceConnector": {"endpoints": {"identity": f"grpc://127.0.0.1:{identity_port}",
                                                        **(extra_endpoints or {})}}},
        "TOKEN": token,
    }


@dataclass
class Process:
    name: str
    proc: subprocess.Popen
    log: Path

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_serving(p: Process, port: int) -> None:
    """Until the port accepts gRPC connections; fails at once if the process exits."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while True:
            if p.proc.poll() is not None:
                raise RuntimeError(f"{p.name} exited with {p.proc.returncode}:\n{p.tail()}")
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                return
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{p.name} did not serve on {port} in {READY_TIMEOUT_S}s:\n{p.tail()}")
    finally:
        channel.close()


@dataclass
class RealCloudForet:
    """What the conformance cases get: addresses, the seeded ids and the credentials."""

    workdir: Path
    processes: list[Process] = field(default_factory=list)
    identity_port: int = 0
    cost_port: int = 0
    plugin_endpoint: str = ""
    system_token: str = ""
    domain_id: str = ""
    workspace_id: str = ""
    project_id: str = ""
    data_source_id: str = ""
    users: dict = field(default_factory=dict)  # user_id -> password
    apps: dict = field(default_factory=dict)  # name -> client secret
    plugin_store: Path | None = None  # the cost plugin's store (its costs/ is what Cost.get_data answers)
    other_workspace_id: str = ""
    _channels: dict = field(default_factory=dict)

    # -- processes ------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> Process:
        log = self.workdir / f"{name}.log"
        fh = open(log, "wb")
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=self.workdir,
                                env={**os.environ, **(env or {})})
        fh.close()
        p = Process(name, proc, log)
        self.processes.append(p)
        return p

    def _start_service(self, package: str, port: int, conf: dict, venv: str) -> None:
        path = self.workdir / f"{package}.yaml"
        path.write_text(yaml.safe_dump({"GLOBAL": conf}))  # spaceone-core reads a config file's GLOBAL
        p = self._spawn(package.split(".")[-1], [str(venvs.ensure(venv)), str(HERE / "launcher.py"), package,
                                                 "-p", str(port), "-c", str(path)])
        wait_serving(p, port)

    def start_identity(self) -> "RealCloudForet":
        """The identity service alone, initialised (its system token)."""
        self.identity_port = free_port()
        self._start_service("spaceone.identity", self.identity_port,
                            _service_conf("identity", self.identity_port), "identity")
        init = system_pb2_grpc.SystemStub(self.channel(self.identity_port)).init(system_pb2.SystemInitRequest(
            admin=Admin(user_id="root", password="Root-Pa55-conformance!", name="root")), timeout=60)
        self.system_token = init.system_token
        return self

    def start(self) -> "RealCloudForet":
        self.start_identity()
        self.cost_port = free_port()
        self._start_plugin()
        repo_port, plugin_port, notification_port = free_port(), free_port(), free_port()
        reg = self._spawn("plugin-registry", [str(venvs.ensure("cost-analysis")), str(HERE / "plugin_registry.py"),
                                              "--repository-port", str(repo_port), "--plugin-port", str(plugin_port),
                                              "--plugin-id", PLUGIN_ID,
                                              "--plugin-endpoint", f"grpc://{self.plugin_endpoint}",
                                              "--bare-port", str(notification_port)])
        wait_serving(reg, repo_port)
        wait_serving(reg, plugin_port)
        wait_serving(reg, notification_port)
        self._start_service("spaceone.cost_analysis", self.cost_port, _service_conf(
            "cost-analysis", self.identity_port, self.system_token,
            {"repository": f"grpc://127.0.0.1:{repo_port}", "plugin": f"grpc://127.0.0.1:{plugin_port}",
             "notification": f"grpc://127.0.0.1:{notification_port}"}),
            "cost-analysis")
        return self

    def _start_plugin(self) -> None:
        store = self.workdir / "plugin-store"
        (store / "costs").mkdir(parents=True, exist_ok=True)
        port = free_port()
        p = self._spawn("cost-plugin", [sys.executable, "-m", "plugin", "cost", "--port", str(port),
                                        "--store", str(store)], env={"PYTHONPATH": str(ROOT)})
        wait_serving(p, port)
        self.plugin_endpoint = f"127.0.0.1:{port}"
        self.plugin_store = store

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()
        for ch in self._channels.values():
            ch.close()

    def channel(self, port: int) -> grpc.Channel:
        if port not in self._channels:
            self._channels[port] = grpc.insecure_channel(f"127.0.0.1:{port}")
        return self._channels[port]

    # -- seeding through real RPCs ---------------------------------------
    def login(self, user_id: str, password: str, scope: str = "WORKSPACE", workspace_id: str | None = None) -> str:
        tokens = token_pb2_grpc.TokenStub(self.channel(self.identity_port))
        issued = tokens.issue(token_pb2.IssueTokenRequest(
            credentials=struct({"user_id": user_id, "password": password}), auth_type="LOCAL",
            domain_id=self.domain_id), timeout=30)
        req = token_pb2.GrantTokenRequest(grant_type="REFRESH_TOKEN", token=issued.refresh_token, scope=scope,
                                          domain_id=self.domain_id)
        if scope == "WORKSPACE":
            req.workspace_id = workspace_id or self.workspace_id
        return tokens.grant(req, timeout=30).access_token

    def _md(self, token: str) -> tuple:
        return (("token", token),)

    def seed(self) -> "RealCloudForet":
        owner = self.seed_identity()
        ds = data_source_pb2_grpc.DataSourceStub(self.channel(self.cost_port)).register(
            data_source_pb2.RegisterDataSourceRequest(
                name="nutanix-costs", data_source_type="EXTERNAL", provider="nutanix",
                secret_type="USE_SERVICE_ACCOUNT_SECRET",  # MANUAL needs secret_data, kept by the secret service
                resource_group="WORKSPACE", workspace_id=self.workspace_id,
                plugin_info=data_source_pb2.PluginInfo(plugin_id=PLUGIN_ID, version="1.0", options=struct({}))),
            metadata=owner, timeout=60)
        self.data_source_id = ds.data_source_id
        return self

    def seed_identity(self, service_accounts: bool = True) -> tuple:
        """The domain, workspaces, users, project, apps (and the nutanix service accounts the cost
        cases need); returns the workspace owner's metadata."""
        ident = self.channel(self.identity_port)
        md = self._md(self.system_token)
        admin_password = "Admin-Pa55-conformance!"
        # language given: without it identity asks the config service (not run) for the domain's default
        domain = domain_pb2_grpc.DomainStub(ident).create(domain_pb2.CreateDomainRequest(
            name="nutanix-conformance", admin=Admin(user_id="admin@example.com", password=admin_password, name="admin",
                                                 language="en")),
            metadata=md, timeout=60)
        self.domain_id = domain.domain_id
        self.users["admin@example.com"] = admin_password
        admin = self._md(self.login("admin@example.com", admin_password, scope="DOMAIN"))
        self.workspace_id = workspace_pb2_grpc.WorkspaceStub(ident).create(workspace_pb2.CreateWorkSpaceRequest(
            name="nutanix"), metadata=admin, timeout=30).workspace_id
        self.other_workspace_id = workspace_pb2_grpc.WorkspaceStub(ident).create(
            workspace_pb2.CreateWorkSpaceRequest(name="elsewhere"),
            metadata=admin, timeout=30).workspace_id
        users = user_pb2_grpc.UserStub(ident)
        bindings = role_binding_pb2_grpc.RoleBindingStub(ident)
        for user_id, role_id, group in (("collector@example.com", "managed-workspace-owner", "WORKSPACE"),
                                        ("member@example.com", "managed-workspace-member", "WORKSPACE"),
                                        ("reader@example.com", "managed-domain-admin", "DOMAIN")):
            password = f"{user_id.split('@')[0].title()}-Pa55-conformance!"
            users.create(user_pb2.CreateUserRequest(user_id=user_id, password=password, auth_type="LOCAL",
                                                    language="en"), metadata=admin, timeout=30)
            rb = role_binding_pb2.CreateRoleBindingRequest(user_id=user_id, role_id=role_id, resource_group=group)
            if group == "WORKSPACE":
                rb.workspace_id = self.workspace_id
            bindings.create(rb, metadata=admin, timeout=30)
            self.users[user_id] = password
        owner = self._md(self.login("collector@example.com", self.users["collector@example.com"]))
        self.project_id = project_pb2_grpc.ProjectStub(ident).create(project_pb2.CreateProjectRequest(
            name="nutanix-costs", project_type="PUBLIC"), metadata=owner,
            timeout=30).project_id
        if service_accounts:
            self._seed_service_accounts(ident, admin, owner)
        apps = app_pb2_grpc.AppStub(ident)
        for name, role_id, group in (("workspace-owner-app", "managed-workspace-owner", "WORKSPACE"),
                                     ("domain-admin-app", "managed-domain-admin", "DOMAIN")):
            req = app_pb2.CreateAppRequest(name=name, role_id=role_id, resource_group=group)
            if group == "WORKSPACE":
                req.workspace_id = self.workspace_id
            self.apps[name] = apps.create(req, metadata=admin, timeout=30).client_secret
        return owner

    SERVICE_ACCOUNTS = ("pc-conformance", "pc-retry", "pc-plugin")

    def _seed_service_accounts(self, ident: grpc.Channel, admin: tuple, owner: tuple) -> None:
        """One service account per Prism Central, named after the collector's account: the cost plugin's
        data source rule (match_service_account: additional_info.Account -> name), which the real
        cost-analysis applies to every Cost.create too, finds it (with none, 2.0.108's
        DataSourceRuleManager._change_cost_data_with_actions fails with 'NoneType' has no 'get')."""
        provider_pb2_grpc.ProviderStub(ident).create(provider_pb2.CreateProviderRequest(
            provider="nutanix", name="Nutanix"), metadata=admin, timeout=30)
        schema_pb2_grpc.SchemaStub(ident).create(schema_pb2.CreateSchemaRequest(
            schema_id="nutanix-prism-central", name="nutanix-prism-central", schema_type="SERVICE_ACCOUNT",
            provider="nutanix",
            schema=struct({"type": "object"})), metadata=admin, timeout=30)
        subprocess.run([str(venvs.ensure("identity")), str(HERE / "seed_service_accounts.py"),
                        self.identity_endpoint, self.project_id, *self.SERVICE_ACCOUNTS],
                       env={**os.environ, "SEED_TOKEN": owner[0][1]}, check=True, timeout=60)

    @property
    def identity_endpoint(self) -> str:
        return f"127.0.0.1:{self.identity_port}"

    @property
    def cost_endpoint(self) -> str:
        return f"127.0.0.1:{self.cost_port}"

    def to_dict(self, message) -> dict:
        return json_format.MessageToDict(message, preserving_proto_field_name=True)
