"""Against CloudForet as it is deployed: each service on its own address, apps
as credentials, an internal secret service. Each case follows what was seen on
the real servers (shared/docs/cloudforet.md, "Seen on the real servers" 1, 5, 9)
and the real code cited in the emulator (identity's EndpointService, python-core's
SpaceONEAuthorizationHandler, the secret service's internal get_data).
"""
from __future__ import annotations

import json

import grpc
import pytest
import yaml
from spaceone.api.notification.v1 import notification_pb2, notification_pb2_grpc

from emulators.cloudforet import auth as emu_auth
from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import CLOUDFORET_USER_PASSWORD, PRISM_PASSWORD, account_entry

COLLECTED_AT = "2026-11-28T06:00:00Z"
SPEC = FleetSpec(seed=5, prism_centrals=1, clusters=1, hosts_per_cluster=1, vms=12, disks_per_vm=1)
USER = {"user_id": "collector@example.com", "password": CLOUDFORET_USER_PASSWORD, "role_type": "WORKSPACE_OWNER"}
RATE = {"vcpu_hour": 0.02, "gib_ram_hour": 0.005, "gib_storage_month": 0.05, "currency": "USD"}


def start_emulator(tmp_path, **config) -> CloudForetEmulator:
    return CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig(users=[USER], **config),
                              per_service=True).start()


@pytest.fixture
def emu(tmp_path):
    e = start_emulator(tmp_path)
    yield e
    e.stop()


def config_file(tmp_path, emu, servers, endpoints=None, auth=None, accounts=None, **cloudforet) -> str:
    where = {"endpoints": endpoints} if endpoints is not None else {"endpoint": emu.endpoint}
    raw = {
        "accounts": accounts or [account_entry(s) for s in servers],
        "prism": {"page_size": 25, "max_requests_per_s": 200, "max_attempts": 2, "api": "v3"},
        "cloudforet": {**where, "domain_id": emu.config.domain_id, "workspace_id": emu.config.workspace_id,
                       "auth": auth or {"token_env": "TEST_CF_TOKEN"}, "cost_mode": "datasource", **cloudforet},
        "rate_card": {"default": RATE},
        "metric_store": {"path": str(tmp_path / "metrics")},
        "cost_store": {"path": str(tmp_path / "costs")},
        "report": {"path": str(tmp_path / "report.json")},
        "snapshot": {"enabled": False},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def grpc_urls(emu, *services) -> dict:
    return {s: f"grpc://{emu.endpoints[s]}" for s in services}


def report(tmp_path) -> dict:
    return json.loads((tmp_path / "report.json").read_text())


@pytest.fixture(autouse=True)
def _env(monkeypatch, emu):
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)
    monkeypatch.setenv("TEST_CF_TOKEN", emu.app_token())
    monkeypatch.setenv("TEST_CF_PASSWORD", CLOUDFORET_USER_PASSWORD)


def test_each_service_on_its_own_address(tmp_path, emu, prism_servers):
    """The emulator's per-service ports answer UNIMPLEMENTED for the other services,
    as the real servers do; a config naming each service's address collects."""
    with grpc.insecure_channel(emu.endpoints["inventory"]) as ch:
        with pytest.raises(grpc.RpcError) as err:
            notification_pb2_grpc.NotificationStub(ch).create(
                notification_pb2.CreateNotificationRequest(resource_type="identity.Domain"), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    servers = prism_servers(SPEC)
    path = config_file(tmp_path, emu, servers,
                       endpoints=grpc_urls(emu, "identity", "inventory", "notification", "secret"))
    assert run(["--config", path, "--collected-at", COLLECTED_AT]) == 0
    assert report(tmp_path)["accounts"]["prism-central-0"]["inventory"]["created"] > 12
    assert len(emu.store.notifications()) == 1


def test_one_endpoint_pointed_at_one_service_stops_at_start_up(tmp_path, emu, prism_servers, capsys):
    """Today's failure on a real deployment: `endpoint:` at the inventory address
    works for inventory and nothing else; pointed at identity, the preflight's
    inventory read fails at once, naming the key to set (exit 3)."""
    servers = prism_servers(SPEC)
    path = config_file(tmp_path, emu, servers,
                       endpoints={"inventory": f"grpc://{emu.endpoints['identity']}",
                                  "notification": f"grpc://{emu.endpoints['notification']}"})
    assert run(["--config", path, "--collected-at", COLLECTED_AT]) == 3
    err = capsys.readouterr().err
    assert "UNIMPLEMENTED" in err and "set cloudforet.endpoints.inventory" in err
    assert emu.store.cloud_services() == []


def test_a_needed_service_neither_configured_nor_discovered_names_the_key(tmp_path, emu, prism_servers, capsys):
    """A stock identity lists no endpoints (identity's ENDPOINTS global defaults to [])."""
    servers = prism_servers(SPEC)
    path = config_file(tmp_path, emu, servers, endpoints=grpc_urls(emu, "identity"))
    assert run(["--config", path, "--collected-at", COLLECTED_AT]) == 2
    err = capsys.readouterr().err
    assert "cloudforet.endpoints.inventory" in err and "cloudforet.endpoints.notification" in err
    assert "Endpoint.list" in err
    assert emu.store.cloud_services() == []


def test_the_other_services_are_discovered_from_identity(tmp_path, prism_servers, monkeypatch):
    """With only identity given, the others come from Endpoint.list (no token needed)."""
    (tmp_path / "published").mkdir()
    emu = start_emulator(tmp_path / "published", published_endpoints="self")
    try:
        servers = prism_servers(SPEC)
        path = config_file(tmp_path, emu, servers, endpoints=grpc_urls(emu, "identity"),
                           auth={"user_id": USER["user_id"], "password_env": "TEST_CF_PASSWORD"})
        assert run(["--config", path, "--collected-at", COLLECTED_AT]) == 0
        assert report(tmp_path)["status"] == "SUCCESS"
        assert len(emu.store.notifications()) == 1
        assert emu.backend.calls["Endpoint.list"] == 1
    finally:
        emu.stop()


def test_one_login_per_process(tmp_path, emu, prism_servers):
    """A run made 7 Token.issue and 7 Token.grant (one per sink instance): now the
    process logs in once and every client shares the token."""
    servers = prism_servers(SPEC)
    path = config_file(tmp_path, emu, servers, endpoints=grpc_urls(emu, "identity", "inventory", "notification"),
                       auth={"user_id": USER["user_id"], "password_env": "TEST_CF_PASSWORD"})
    assert run(["--config", path, "--collected-at", COLLECTED_AT]) == 0
    assert (emu.backend.calls["Token.issue"], emu.backend.calls["Token.grant"]) == (1, 1)


def test_app_token_run_never_reads_the_inbox_and_notifies_once(tmp_path, emu, prism_servers):
    """Notification.list is a user's own inbox (role_types ["USER"]: apps are refused), so
    the collector never calls it; a retried or repeated run id is not notified twice."""
    with grpc.insecure_channel(emu.endpoints["notification"]) as ch:
        with pytest.raises(grpc.RpcError) as err:
            notification_pb2_grpc.NotificationStub(ch).list(
                notification_pb2.NotificationQuery(), metadata=(("token", emu.app_token()),), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    servers = prism_servers(SPEC)
    path = config_file(tmp_path, emu, servers, endpoints=grpc_urls(emu, "inventory", "notification"),
                       notification={"resource_type": "identity.Project", "resource_id": "project-ops"})
    assert run(["--config", path, "--collected-at", COLLECTED_AT]) == 0
    assert run(["--config", path, "--collected-at", COLLECTED_AT]) == 0  # the same run id again
    assert emu.backend.calls["Notification.list"] == 1  # the test's own call above, no other
    notes = emu.store.notifications()
    assert len(notes) == 1 and notes[0]["resource_type"] == "identity.Project"
    assert report(tmp_path)["notifications"] == {"prism-central-0": "already sent"}


def test_a_user_inbox_holds_its_own_notifications_only(tmp_path):
    other = {"user_id": "someone@example.com", "password": "x-pass", "role_type": "WORKSPACE_MEMBER"}
    emu = CloudForetEmulator(str(tmp_path / "inbox.sqlite"), EmulatorConfig(users=[USER, other])).start()
    try:
        signer, cfg = emu.signer, emu.config
        token = lambda u, role: signer.issue(u, emu_auth.ACCESS, emu_auth.SCOPE_WORKSPACE, role,  # noqa: E731
                                             cfg.domain_id, cfg.workspace_id, 600)
        with grpc.insecure_channel(emu.endpoint) as ch:
            stub = notification_pb2_grpc.NotificationStub(ch)
            stub.create(notification_pb2.CreateNotificationRequest(
                resource_type="identity.User", resource_id=other["user_id"], topic="t"),
                metadata=(("token", emu.app_token()),), timeout=5)
            stub.create(notification_pb2.CreateNotificationRequest(
                resource_type="identity.Domain", resource_id=cfg.domain_id, topic="t"),
                metadata=(("token", emu.app_token()),), timeout=5)
            mine = stub.list(notification_pb2.NotificationQuery(),
                             metadata=(("token", token(USER["user_id"], "WORKSPACE_OWNER")),), timeout=5)
            theirs = stub.list(notification_pb2.NotificationQuery(),
                               metadata=(("token", token(other["user_id"], "WORKSPACE_MEMBER")),), timeout=5)
        assert mine.total_count == 1  # the Domain one, copied to every user of the domain
        assert theirs.total_count == 2
    finally:
        emu.stop()


def test_an_app_secret_near_expiry_is_warned_about(tmp_path, emu, prism_servers, monkeypatch, capsys):
    cfg = emu.config
    short = emu.signer.issue("app-nutanix-collector", emu_auth.CLIENT_SECRET, emu_auth.SCOPE_WORKSPACE,
                             "WORKSPACE_OWNER", cfg.domain_id, cfg.workspace_id, 10 * 86400)
    monkeypatch.setenv("TEST_CF_TOKEN", short)
    servers = prism_servers(SPEC)
    path = config_file(tmp_path, emu, servers)
    assert run(["--config", path, "--collected-at", COLLECTED_AT]) == 0
    warnings = report(tmp_path)["warnings"]
    assert len(warnings) == 1 and "TEST_CF_TOKEN expires on" in warnings[0] and "(in 9 days)" in warnings[0]
    assert short not in json.dumps(report(tmp_path))
    assert "! warning: the CloudForet app secret" in capsys.readouterr().out


def test_an_app_secret_far_from_expiry_is_not_warned_about(tmp_path, emu, prism_servers):
    servers = prism_servers(SPEC)
    assert run(["--config", config_file(tmp_path, emu, servers), "--collected-at", COLLECTED_AT]) == 0
    assert report(tmp_path)["warnings"] == []


def test_an_encrypted_secret_is_a_clear_account_error(tmp_path, prism_servers, monkeypatch):
    """Secret.get_data answers {encrypted, encrypt_options, data}: ciphertext is never a password."""
    servers = prism_servers(SPEC)
    pc = servers[0]
    secret = {"nutanix_host": pc.host, "nutanix_port": pc.port, "nutanix_username": "admin",
              "nutanix_password": PRISM_PASSWORD, "scheme": "http"}
    (tmp_path / "enc").mkdir()
    emu = start_emulator(tmp_path / "enc", secrets={"secret-enc": secret, "secret-plain": secret},
                         encrypted_secrets=["secret-enc"])
    try:
        path = config_file(tmp_path, emu, servers, accounts=[
            {"name": "enc", "secret_id": "secret-enc", "scheme": "http"},
            {"name": "plain", "secret_id": "secret-plain", "scheme": "http"}])
        monkeypatch.setenv("TEST_CF_TOKEN", emu.app_token())
        assert run(["--config", path, "--collected-at", COLLECTED_AT]) == 1
        accounts = report(tmp_path)["accounts"]
        assert accounts["plain"]["status"] == "SUCCESS"
        assert accounts["enc"]["status"] == "ERROR"
        assert "secret-enc is stored encrypted" in accounts["enc"]["error"]
        assert PRISM_PASSWORD not in json.dumps(report(tmp_path))
    finally:
        emu.stop()


def test_secret_get_data_needs_no_token_as_on_the_real_internal_api(emu):
    from spaceone.api.secret.v1 import secret_pb2, secret_pb2_grpc
    with grpc.insecure_channel(emu.endpoints["secret"]) as ch:
        with pytest.raises(grpc.RpcError) as err:  # no token, unknown secret: NOT_FOUND, not UNAUTHENTICATED
            secret_pb2_grpc.SecretStub(ch).get_data(
                secret_pb2.GetSecretDataRequest(secret_id="secret-x", domain_id=emu.config.domain_id), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

