"""Security requirements, end to end against the emulators.

- Prism over HTTPS: verification on by default, ``ca_bundle``, ``verify_ssl: false`` only with a warning.
- CloudForet over TLS: secure by default for non-loopback endpoints, ``tls`` + ``ca_bundle``.
- Secrets never appear in any output of a DEBUG run (run as a subprocess so every logger is captured).
- The CloudForet emulator refuses missing / forged / expired tokens and wrong roles on every RPC the
  pipeline uses.
"""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import certifi
import grpc
import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from spaceone.api.cost_analysis.v1 import cost_pb2, cost_pb2_grpc
from spaceone.api.identity.v2 import service_account_pb2, service_account_pb2_grpc, token_pb2, token_pb2_grpc
from spaceone.api.inventory.v1 import (
    cloud_service_pb2,
    cloud_service_pb2_grpc,
    cloud_service_type_pb2,
    cloud_service_type_pb2_grpc,
    metric_pb2,
    metric_pb2_grpc,
    namespace_pb2,
    namespace_pb2_grpc,
    region_pb2,
    region_pb2_grpc,
)
from spaceone.api.notification.v1 import notification_pb2, notification_pb2_grpc
from spaceone.api.secret.v1 import secret_pb2, secret_pb2_grpc

from connectors.cloudforet import CloudForetEndpoint
from connectors.errors import PrismError
from connectors.prism import PrismClient, PrismCredentials
from connectors.retry import RetryPolicy
from emulators.cloudforet.auth import ACCESS, CLIENT_SECRET, SCOPE_WORKSPACE, TokenSigner
from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.fleet import FleetSpec, generate_fleet
from emulators.prism.server import PrismServer
from emulators.tls import TlsFiles, grpc_server_credentials, make_ca_and_server_cert, prism_ssl_context
from pipeline.run import run
from tests.helpers import PRISM_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
COLLECTED_AT = "2026-11-28T06:00:00Z"
SMALL = FleetSpec(seed=23, prism_centrals=1, clusters=1, hosts_per_cluster=1, vms=4, disks_per_vm=1)
RATE = {"vcpu_hour": 0.02, "gib_ram_hour": 0.005, "gib_storage_month": 0.05, "currency": "USD"}


def write_config(tmp_path: Path, emu: CloudForetEmulator, accounts: list[dict], name: str = "config.yaml",
                 auth: dict | None = None, **cloudforet: Any) -> str:
    raw = {
        "accounts": accounts,
        "prism": {"page_size": 25, "max_requests_per_s": 500, "max_concurrency": 4, "max_attempts": 2,
                  "timeout_s": 10, "api": "v3"},
        "cloudforet": {"endpoint": emu.endpoint, "domain_id": emu.config.domain_id,
                       "workspace_id": emu.config.workspace_id, "auth": auth or {"token_env": "SEC_CF_TOKEN"},
                       "batch_size": 40, "timeout_s": 10, **cloudforet},
        "rate_card": {"default": RATE},
        "metric_store": {"path": str(tmp_path / "metrics")},
        "cost_store": {"path": str(tmp_path / "costs")},
        "report": {"path": str(tmp_path / f"{Path(name).stem}-report.json")},
        "snapshot": {"path": str(tmp_path / "snapshots")},
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def report_of(config: str) -> dict:
    return json.loads(Path(yaml.safe_load(Path(config).read_text())["report"]["path"]).read_text())


def prism_account(server: PrismServer, name: str, **extra: Any) -> dict:
    return {"name": name, "host": server.host, "port": server.port, "scheme": "http", "username": "admin",
            "password_env": "SEC_PRISM_PASSWORD", **extra}


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TlsFiles:
    return make_ca_and_server_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def emulators() -> Iterator[Callable]:
    """start(kind, ...) -> a started PrismServer or CloudForetEmulator, stopped after the test."""
    started: list = []

    def start(obj):
        started.append(obj.start())
        return obj

    yield start
    for obj in reversed(started):
        obj.stop()


# =============================================================================== 1. Prism over HTTPS
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_prism_https_verifies_by_default_and_accepts_a_ca_bundle(tmp_path, tls, emulators, monkeypatch, caplog):
    monkeypatch.setenv("SEC_PRISM_PASSWORD", PRISM_PASSWORD)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # as many hosts have it; must not override ca_bundle
    ssl_ctx = prism_ssl_context(tls)
    pcs = generate_fleet(FleetSpec(seed=29, prism_centrals=3, clusters=1, hosts_per_cluster=1, vms=6,
                                   disks_per_vm=1))
    no_ca, with_ca, no_verify = (emulators(PrismServer(pc, password=PRISM_PASSWORD, ssl_context=ssl_ctx))
                                 for pc in pcs)
    assert no_ca.url.startswith("https://")
    cf = emulators(CloudForetEmulator(str(tmp_path / "cf.sqlite")))
    monkeypatch.setenv("SEC_CF_TOKEN", cf.app_token())

    # No CA configured: the system trust store does not know the emulator's CA -> the account fails.
    config = write_config(tmp_path, cf, [prism_account(no_ca, "pc-no-ca", scheme="https")], name="no-ca.yaml")
    assert run(["--config", config, "--collected-at", COLLECTED_AT, "--run-id", "no-ca"]) == 1
    acc = report_of(config)["accounts"]["pc-no-ca"]
    assert acc["status"] == "ERROR"
    assert "TLS verification failed" in acc["error"] and "ca_bundle" in acc["error"], acc["error"]
    assert not cf.store.cloud_services()

    # ca_bundle -> verified and collected; verify_ssl: false -> collected, with a WARNING.
    caplog.clear()
    caplog.set_level(logging.WARNING)
    config = write_config(tmp_path, cf, [
        prism_account(with_ca, "pc-with-ca", scheme="https", ca_bundle=tls.ca_pem),
        prism_account(no_verify, "pc-no-verify", scheme="https", verify_ssl=False),
    ], name="ok.yaml")
    assert run(["--config", config, "--collected-at", COLLECTED_AT, "--run-id", "ok"]) == 0
    report = report_of(config)
    assert report["accounts"]["pc-with-ca"]["status"] == "SUCCESS"
    assert report["accounts"]["pc-no-verify"]["status"] == "SUCCESS"
    assert report["accounts"]["pc-with-ca"]["read"]["vms"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and "verification is OFF" in r.getMessage()]
    assert warnings and all("pc-no-verify" in w for w in warnings), warnings
    assert {s["account"] for s in cf.store.cloud_services()} == {"pc-with-ca", "pc-no-verify"}


@pytest.mark.parametrize("env_bundle", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", None])
def test_prism_client_tls_settings_survive_a_ca_bundle_in_the_environment(tls, emulators, monkeypatch, env_bundle):
    """requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override Session.verify: the client must not."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    if env_bundle:
        monkeypatch.setenv(env_bundle, certifi.where())
    srv = emulators(PrismServer(generate_fleet(SMALL)[0], password=PRISM_PASSWORD, ssl_context=prism_ssl_context(tls)))

    def client(**tls_settings):
        creds = PrismCredentials(host=srv.host, port=srv.port, username="admin", password=PRISM_PASSWORD,
                                 **tls_settings)
        return PrismClient("pc-tls", creds, retry=RetryPolicy(max_attempts=1), timeout_s=5)

    with pytest.raises(PrismError) as info:
        client().list_page("vm", 0, 10)
    assert "TLS verification failed" in str(info.value) and "'pc-tls'" in str(info.value)
    assert PRISM_PASSWORD not in str(info.value)
    assert client(ca_bundle=tls.ca_pem).list_page("vm", 0, 10).total_matches == 4
    with pytest.warns(Warning):  # urllib3's InsecureRequestWarning: never silently insecure
        assert client(verify_ssl=False).list_page("vm", 0, 10).total_matches == 4
    other = make_ca_and_server_cert(Path(tls.ca_pem).parent / "other")
    with pytest.raises(PrismError, match="TLS verification failed"):
        client(ca_bundle=other.ca_pem).list_page("vm", 0, 10)  # a CA bundle is not "verify off"


# =============================================================================== 2. CloudForet over TLS
def test_cloudforet_endpoint_defaults_to_tls_unless_loopback():
    assert CloudForetEndpoint("cf.example.com:443").use_tls is True
    assert CloudForetEndpoint("grpc.cloudforet.example.com:50051").use_tls is True
    assert CloudForetEndpoint("10.0.0.5:50051").use_tls is True
    assert CloudForetEndpoint("localhost.example.com:443").use_tls is True  # not loopback, only looks like it
    for loopback in ("127.0.0.1:50051", "localhost:50051", "[::1]:50051"):
        assert CloudForetEndpoint(loopback).use_tls is False, loopback
        assert CloudForetEndpoint(loopback, tls=True).use_tls is True, loopback
    assert CloudForetEndpoint("cf.example.com:443", tls=False).use_tls is False  # only when said explicitly


def test_cloudforet_over_tls_needs_the_ca(tmp_path, tls, emulators, monkeypatch, capsys):
    monkeypatch.setenv("SEC_PRISM_PASSWORD", PRISM_PASSWORD)
    prism = emulators(PrismServer(generate_fleet(SMALL)[0], password=PRISM_PASSWORD))
    cf = emulators(CloudForetEmulator(str(tmp_path / "cf.sqlite"), server_credentials=grpc_server_credentials(tls)))
    monkeypatch.setenv("SEC_CF_TOKEN", cf.app_token())
    endpoint = f"localhost:{cf.port}"  # loopback: TLS only because the config says so
    accounts = [prism_account(prism, "pc-1")]

    config = write_config(tmp_path, cf, accounts, name="tls-ok.yaml", endpoint=endpoint, tls=True,
                          ca_bundle=tls.ca_pem)
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 0
    assert report_of(config)["accounts"]["pc-1"]["status"] == "SUCCESS"
    assert len(cf.store.cloud_services()) == 4 + 4 + 1 + 1 and len(cf.store.notifications()) == 1
    capsys.readouterr()

    # tls: true without the CA: the system trust store does not know the emulator's CA.
    config = write_config(tmp_path, cf, accounts, name="tls-no-ca.yaml", endpoint=endpoint, tls=True)
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 3
    err = capsys.readouterr().err
    assert f"error: CloudForet at {endpoint}" in err and "UNAVAILABLE" in err, err
    assert "over TLS" in err and "set cloudforet.ca_bundle" in err, err  # says what to do
    # Plaintext against the TLS server (tls not set, loopback): refused as well.
    config = write_config(tmp_path, cf, accounts, name="plain.yaml", endpoint=endpoint)
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 3
    assert len(cf.store.notifications()) == 1  # neither refused run wrote anything


# =============================================================================== 3. secrets at DEBUG
PRISM_PW = "PrismPw-A-9f2c71e4d8"         # account from the environment
SECRET_SVC_PW = "PrismPw-S-3b81aa06c5"    # account whose credentials come from CloudForet's secret service
WRONG_PRISM_PW = "WrongPw-W-5d0e4f7a21"   # an account with a wrong password (error path)
CF_USER_PW = "CfUserPw-U-8c1f93b2e7"      # CloudForet user password (Token.issue + grant)
CF_WRONG_PW = "CfWrongPw-X-0a7d3e55f1"    # wrong CloudForet password (login refused)
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


# `python -m pipeline` with the root logger really at DEBUG. pipeline.run.run() calls logging.basicConfig()
# without force=True after Beam's import has already given the root logger a WARNING handler, so on its
# own --log-level is ignored (pinned by test_log_level_option_takes_effect, reported to the lead).
BOOT = ("import logging, sys; import pipeline.run as r; "
        "logging.basicConfig(level=logging.DEBUG, format='%(asctime)s %(levelname)s %(name)s: %(message)s', "
        "force=True); sys.exit(r.run(sys.argv[1:]))")


def run_subprocess(config: str, env: dict, run_id: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BOOT, "--config", config, "--log-level", "DEBUG",
                           "--collected-at", COLLECTED_AT, "--run-id", run_id],
                          cwd=ROOT, env=env, capture_output=True, timeout=120)


def test_log_level_option_takes_effect(tmp_path):
    proc = subprocess.run([sys.executable, "-c",
                           "import logging, sys; from pipeline.run import run; "
                           "run(['--config', sys.argv[1], '--log-level', 'DEBUG']); "
                           "print(logging.getLogger().getEffectiveLevel())", str(tmp_path / "missing.yaml")],
                          cwd=ROOT, capture_output=True, timeout=60, text=True)
    assert proc.stdout.split()[-1] == str(logging.DEBUG), proc.stdout


def files_text(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every file as raw bytes, plus decoded Avro/Parquet records (compression would hide a match)."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        yield str(path), raw
        if path.suffix == ".avro":
            import fastavro
            with path.open("rb") as fh:
                yield f"{path} (records)", json.dumps(list(fastavro.reader(fh)), default=str).encode()
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq
            yield f"{path} (rows)", json.dumps(pq.read_table(path).to_pylist(), default=str).encode()


def test_secrets_never_appear_in_any_output_at_debug(tmp_path, emulators):
    pc_a, pc_s = generate_fleet(FleetSpec(seed=31, prism_centrals=2, clusters=1, hosts_per_cluster=1, vms=6,
                                          disks_per_vm=1))
    env_pc = emulators(PrismServer(pc_a, password=PRISM_PW))
    secret_pc = emulators(PrismServer(pc_s, password=SECRET_SVC_PW))
    cf = emulators(CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig(
        users=[{"user_id": "collector@example.com", "password": CF_USER_PW, "role_type": "DOMAIN_ADMIN"}],
        secrets={"secret-pc-s": {"nutanix_host": secret_pc.host, "nutanix_port": secret_pc.port,
                                 "nutanix_username": "admin", "nutanix_password": SECRET_SVC_PW,
                                 "scheme": "http"}})))
    app_token = cf.app_token()
    signature = app_token.split(".")[2]
    secrets = {"prism password": PRISM_PW, "secret-service prism password": SECRET_SVC_PW,
               "wrong prism password": WRONG_PRISM_PW, "cloudforet user password": CF_USER_PW,
               "wrong cloudforet password": CF_WRONG_PW, "app token": app_token,
               "app token signature head": signature[:12], "app token signature tail": signature[-12:]}
    env = {**os.environ, "SEC_PRISM_PASSWORD": PRISM_PW, "SEC_WRONG_PASSWORD": WRONG_PRISM_PW,
           "SEC_CF_TOKEN": app_token, "SEC_CF_PASSWORD": CF_USER_PW, "SEC_CF_WRONG_PASSWORD": CF_WRONG_PW}
    accounts = [prism_account(env_pc, "pc-env"),
                {**prism_account(env_pc, "pc-wrong-password"), "password_env": "SEC_WRONG_PASSWORD"},
                {"name": "pc-secret", "secret_id": "secret-pc-s", "scheme": "http"}]

    outputs: dict[str, bytes] = {}
    runs = [("app-token", {"token_env": "SEC_CF_TOKEN"}, 1),
            ("user-login", {"user_id": "collector@example.com", "password_env": "SEC_CF_PASSWORD"}, 1),
            ("wrong-login", {"user_id": "collector@example.com", "password_env": "SEC_CF_WRONG_PASSWORD"}, 3)]
    for run_id, auth, want in runs:
        config = write_config(tmp_path, cf, accounts, name=f"{run_id}.yaml", auth=auth)
        proc = run_subprocess(config, env, run_id)
        outputs[f"{run_id} stdout"], outputs[f"{run_id} stderr"] = proc.stdout, proc.stderr
        assert proc.returncode == want, proc.stderr.decode()[-3000:]
        if want == 1:  # the whole pipeline ran, at DEBUG, through the error paths too
            report = report_of(config)
            assert report["accounts"]["pc-env"]["status"] == "SUCCESS"
            assert report["accounts"]["pc-secret"]["status"] == "SUCCESS"  # read through Secret.get_data
            assert "credentials rejected" in report["accounts"]["pc-wrong-password"]["error"]
            assert b" DEBUG " in proc.stderr and b"credentials rejected" in proc.stderr
        else:
            assert b"UNAUTHENTICATED" in proc.stderr

    for base in (tmp_path / "snapshots", tmp_path / "metrics", tmp_path / "costs"):
        outputs.update(files_text(base))
    outputs.update((p.name, p.read_bytes()) for p in tmp_path.glob("*-report.json"))
    assert any("snapshots" in k for k in outputs) and any("metrics" in k for k in outputs)
    store = cf.store
    stored = {"notifications": store.notifications(), "cloud services": store.cloud_services(),
              "costs": store.costs(), "types": store.cloud_service_types(), "regions": store.regions()}
    assert len(stored["notifications"]) == 6 and stored["cloud services"]
    outputs.update((f"cloudforet {k}", json.dumps(v, default=str).encode()) for k, v in stored.items())

    leaks = [(what, where) for where, data in outputs.items() for what, value in secrets.items()
             if value.encode() in data]
    assert not leaks, f"secrets found: {leaks}"
    tokens = [(where, m.group()[:20]) for where, data in outputs.items() for m in JWT.finditer(data)]
    assert not tokens, f"token-shaped strings found: {tokens}"


# =============================================================================== 4. emulator auth matrix
OWNER = ("owner@example.com", "owner-pw")
MEMBER = ("member@example.com", "member-pw")
DOMAIN, WORKSPACE = "domain-nutanix", "workspace-default"


def _struct(d: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


# Every RPC the pipeline uses, with a minimal valid request (the positive control proves it passes auth).
RPCS: dict[str, tuple[Callable, Callable]] = {
    "CloudService.create": (cloud_service_pb2_grpc.CloudServiceStub, lambda: (
        "create", cloud_service_pb2.CreateServiceRequest(
        name="vm", provider="nutanix", cloud_service_group="Compute", cloud_service_type="Instance",
        reference=cloud_service_pb2.CloudServiceReference(resource_id="auth-matrix-vm")))),
    "CloudService.update": (cloud_service_pb2_grpc.CloudServiceStub, lambda: (
        "update", cloud_service_pb2.UpdateCloudServiceRequest(
        cloud_service_id="cloud-svc-nope", name="vm"))),
    "CloudService.delete": (cloud_service_pb2_grpc.CloudServiceStub, lambda: (
        "delete", cloud_service_pb2.CloudServiceRequest(
        cloud_service_id="cloud-svc-nope"))),
    "CloudService.list": (cloud_service_pb2_grpc.CloudServiceStub, lambda: (
        "list", cloud_service_pb2.CloudServiceQuery())),
    "CloudServiceType.create": (cloud_service_type_pb2_grpc.CloudServiceTypeStub, lambda: ("create",
        cloud_service_type_pb2.CreateCloudServiceTypeRequest(name="Instance", provider="nutanix", group="Compute"))),
    "CloudServiceType.list": (cloud_service_type_pb2_grpc.CloudServiceTypeStub, lambda: ("list",
        cloud_service_type_pb2.CloudServiceTypeQuery())),
    "Region.create": (region_pb2_grpc.RegionStub, lambda: ("create", region_pb2.CreateRegionRequest(
        name="cluster", region_code="auth-matrix-region", provider="nutanix"))),
    "Region.list": (region_pb2_grpc.RegionStub, lambda: ("list", region_pb2.RegionQuery())),
    "CloudServiceType.update": (cloud_service_type_pb2_grpc.CloudServiceTypeStub, lambda: ("update",
        cloud_service_type_pb2.UpdateCloudServiceTypeRequest(cloud_service_type_id="cloud-svc-type-nope"))),
    "Region.update": (region_pb2_grpc.RegionStub, lambda: ("update", region_pb2.UpdateRegionRequest(
        region_id="region-nope", name="cluster"))),
    # Metric Explorer (issue 17): DOMAIN_ADMIN or WORKSPACE_OWNER write, members read
    "Namespace.create": (namespace_pb2_grpc.NamespaceStub, lambda: ("create", namespace_pb2.CreateNamespaceRequest(
        namespace_id="ns-auth-matrix", name="Compute/Instance", category="ASSET", resource_group="DOMAIN",
        resource_type="inventory.CloudService:nutanix.Compute.Instance"))),
    "Namespace.update": (namespace_pb2_grpc.NamespaceStub, lambda: ("update", namespace_pb2.UpdateNamespaceRequest(
        namespace_id="ns-nope", name="x"))),
    "Namespace.list": (namespace_pb2_grpc.NamespaceStub, lambda: ("list", namespace_pb2.NamespaceQuery())),
    "Metric.create": (metric_pb2_grpc.MetricStub, lambda: ("create", json_format.ParseDict({
        "metric_id": "metric-auth-matrix", "name": "VM Count", "metric_type": "GAUGE", "namespace_id": "ns-auth-matrix",
        "resource_type": "inventory.CloudService:nutanix.Compute.Instance", "resource_group": "DOMAIN",
        "query_options": {"fields": {"value": {"operator": "count"}}}}, metric_pb2.CreateMetricRequest()))),
    "Metric.update": (metric_pb2_grpc.MetricStub, lambda: ("update", metric_pb2.UpdateMetricRequest(
        metric_id="metric-nope", unit="Count"))),
    "Metric.run": (metric_pb2_grpc.MetricStub, lambda: ("run", metric_pb2.MetricRequest(metric_id="metric-nope"))),
    "Metric.list": (metric_pb2_grpc.MetricStub, lambda: ("list", metric_pb2.MetricQuery())),
    "Cost.create": (cost_pb2_grpc.CostStub, lambda: ("create", cost_pb2.CreateCostRequest(
        cost=1.0, provider="nutanix", data_source_id="ds-nutanix", billed_date="2026-11-28",
        resource="auth-matrix-vm", usage_type="vcpu", project_id="project-nutanix"))),
    "Cost.list": (cost_pb2_grpc.CostStub, lambda: ("list", cost_pb2.CostQuery(data_source_id="ds-nutanix"))),
    "Cost.delete": (cost_pb2_grpc.CostStub, lambda: ("delete", cost_pb2.CostRequest(cost_id="cost-auth-matrix"))),
    "Notification.create": (notification_pb2_grpc.NotificationStub, lambda: (
        "create", notification_pb2.CreateNotificationRequest(
        resource_type="identity.Domain", resource_id=DOMAIN, topic="nutanix.collector.run",
        message=_struct({"title": "auth matrix"}), notification_type="INFO"))),
    "ServiceAccount.list": (service_account_pb2_grpc.ServiceAccountStub, lambda: ("list",
        service_account_pb2.ServiceAccountSearchQuery(provider="nutanix"))),
    # python -m pipeline setup (identity ServiceAccountService: create WORKSPACE_OWNER/MEMBER,
    # update_secret_data also DOMAIN_ADMIN; Provider and Schema writes: tests/integration/test_setup.py)
    "ServiceAccount.create": (service_account_pb2_grpc.ServiceAccountStub, lambda: ("create",
        service_account_pb2.CreateServiceAccountRequest(name="auth-matrix", provider="nutanix", data=_struct({}),
                                                        project_id="project-nutanix"))),
    "ServiceAccount.update_secret_data": (service_account_pb2_grpc.ServiceAccountStub, lambda: (
        "update_secret_data", service_account_pb2.UpdateServiceAccountSecretRequest(
            service_account_id="sa-nope", secret_schema_id="nutanix-secret-prism-central",
            secret_data=_struct({"nutanix_host": "pc.local"})))),
}
OWNER_ONLY = ("CloudServiceType.create", "Region.create", "Cost.create", "Cost.delete", "CloudServiceType.update",
              "Region.update", "Namespace.create", "Namespace.update", "Metric.create", "Metric.update", "Metric.run")
# The secret service's internal API: the real one excludes authentication and authorization
# (deployments keep it inside the cluster), so it is outside the token matrix.
INTERNAL = {"Secret.get_data": (secret_pb2_grpc.SecretStub, lambda: ("get_data", secret_pb2.GetSecretDataRequest(
    secret_id="secret-pc", domain_id=DOMAIN)))}


class AuthWorld:
    def __init__(self, emu: CloudForetEmulator):
        self.emu = emu
        self.channel = grpc.insecure_channel(emu.endpoint)
        tokens = token_pb2_grpc.TokenStub(self.channel)

        def issue(user):
            req = token_pb2.IssueTokenRequest(auth_type=token_pb2.IssueTokenRequest.LOCAL, domain_id=DOMAIN)
            req.credentials.update({"user_id": user[0], "password": user[1]})
            return tokens.issue(req, timeout=5)

        def grant(refresh):
            return tokens.grant(token_pb2.GrantTokenRequest(
                grant_type=token_pb2.GrantTokenRequest.REFRESH_TOKEN, token=refresh,
                scope=token_pb2.GrantTokenRequest.WORKSPACE, workspace_id=WORKSPACE, domain_id=DOMAIN),
                timeout=5).access_token

        self.app = emu.app_token()
        owner_issued = issue(OWNER)
        self.owner = grant(owner_issued.refresh_token)
        self.member = grant(issue(MEMBER).refresh_token)
        self.domain_user = owner_issued.access_token   # DOMAIN scope, role USER: no API call allowed
        self.refresh = owner_issued.refresh_token      # not an API token at all
        header, payload, sig = self.app.split(".")
        flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
        self.bad_tokens = {
            "altered signature": f"{header}.{payload}.{flipped}",
            "signature of another token": f"{header}.{payload}.{self.owner.split('.')[2]}",
            "truncated signature": f"{header}.{payload}.{sig[:-4]}",
            "other key": TokenSigner(TokenSigner.new_key()).issue(
                "app-nutanix-collector", CLIENT_SECRET, SCOPE_WORKSPACE, "WORKSPACE_OWNER", DOMAIN, WORKSPACE, 3600),
            "expired access": emu.signer.issue(OWNER[0], ACCESS, SCOPE_WORKSPACE, "WORKSPACE_OWNER", DOMAIN,
                                               WORKSPACE, -10),
            "expired app": emu.signer.issue("app-nutanix-collector", CLIENT_SECRET, SCOPE_WORKSPACE,
                                            "WORKSPACE_OWNER", DOMAIN, WORKSPACE, -1),
            "refresh token": self.refresh,
            "not a jwt": "not-a-token",
        }

    def call(self, rpc: str, token: str | None):
        stub_cls, make = {**RPCS, **INTERNAL}[rpc]
        verb, request = make()
        metadata = () if token is None else (("token", token),)
        return getattr(stub_cls(self.channel), verb)(request, metadata=metadata, timeout=5)

    def code(self, rpc: str, token: str | None) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as info:
            self.call(rpc, token)
        return info.value.code(), info.value.details() or ""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[AuthWorld]:
    cfg = EmulatorConfig(
        users=[{"user_id": OWNER[0], "password": OWNER[1], "role_type": "WORKSPACE_OWNER"},
               {"user_id": MEMBER[0], "password": MEMBER[1], "role_type": "WORKSPACE_MEMBER"}],
        secrets={"secret-pc": {"nutanix_host": "pc.local", "nutanix_username": "u", "nutanix_password": "p"}})
    with CloudForetEmulator(str(tmp_path_factory.mktemp("auth") / "cf.sqlite"), cfg) as emu:
        w = AuthWorld(emu)
        yield w
        w.channel.close()


def test_the_matrix_covers_every_rpc_the_pipeline_calls():
    """Each stub method the connectors and sinks call is in RPCS (a new RPC must join the matrix)."""
    called = set()
    for path in [*(ROOT / "connectors").glob("*.py"), *(ROOT / "transforms").rglob("*.py")]:
        text = path.read_text()
        for attr, service in (("cloud_service", "CloudService"), ("cloud_service_type", "CloudServiceType"),
                              ("region", "Region"), ("cost", "Cost"), ("notification", "Notification"),
                              ("secret", "Secret"), ("service_account", "ServiceAccount"),
                              ("namespace", "Namespace"), ("metric", "Metric")):
            called |= {f"{service}.{verb}" for verb in re.findall(rf"\.{attr}\.(\w+)\b", text)}
    called = {c for c in called if not re.fullmatch(r"\w+\.(v\d+|future)", c)}  # imports, not RPCs
    assert called <= set(RPCS) | set(INTERNAL), sorted(called - set(RPCS) - set(INTERNAL))
    assert "Notification.list" not in called  # a user's own inbox: apps are refused it
    assert {"CloudService.create", "CloudService.update", "CloudService.list", "Cost.create"} <= called


@pytest.mark.parametrize("rpc", RPCS)
def test_valid_owner_tokens_pass_auth(world, rpc):
    """Positive control: the requests are valid enough that only auth can fail them."""
    for token in (world.app, world.owner):
        try:
            world.call(rpc, token)
        except grpc.RpcError as exc:  # e.g. NOT_FOUND for update/delete of a missing id, ALREADY_EXISTS
            assert exc.code() not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), \
                (rpc, exc.code(), exc.details())


def test_the_internal_secret_api_answers_without_a_token(world):
    assert world.call("Secret.get_data", None).data["nutanix_host"] == "pc.local"


@pytest.mark.parametrize("rpc", RPCS)
def test_missing_token_is_unauthenticated(world, rpc):
    code, details = world.code(rpc, None)
    assert code == grpc.StatusCode.UNAUTHENTICATED and "missing" in details


@pytest.mark.parametrize("rpc", RPCS)
def test_forged_and_expired_tokens_are_unauthenticated(world, rpc):
    for name, token in world.bad_tokens.items():
        code, details = world.code(rpc, token)
        assert code == grpc.StatusCode.UNAUTHENTICATED, (rpc, name, code, details)
        assert token not in details and token.split(".")[-1] not in details, (rpc, name)
        if name.startswith("expired"):
            assert "expired" in details, (rpc, name, details)


@pytest.mark.parametrize("rpc", RPCS)
def test_domain_scope_user_token_is_permission_denied(world, rpc):
    code, details = world.code(rpc, world.domain_user)
    assert code == grpc.StatusCode.PERMISSION_DENIED, (rpc, code, details)
    assert rpc.split(".")[0] in details or "PERMISSION_DENIED" in details


@pytest.mark.parametrize("rpc", OWNER_ONLY)
def test_workspace_member_cannot_call_owner_only_rpcs(world, rpc):
    code, details = world.code(rpc, world.member)
    assert code == grpc.StatusCode.PERMISSION_DENIED, (rpc, code, details)
    assert "WORKSPACE_OWNER" in details


@pytest.mark.parametrize("rpc", sorted(set(RPCS) - set(OWNER_ONLY)))
def test_workspace_member_may_call_the_rest(world, rpc):
    try:
        world.call(rpc, world.member)
    except grpc.RpcError as exc:
        assert exc.code() not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), \
            (rpc, exc.code(), exc.details())
