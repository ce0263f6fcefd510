"""``python -m pipeline setup`` against the CloudForet emulator (identity objects as spaceone-identity
2.0.227 has them), and runs that take their accounts from the service accounts it created."""
from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
import yaml
from google.protobuf import struct_pb2
from spaceone.api.identity.v2 import (
    provider_pb2,
    provider_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
    service_account_pb2,
    service_account_pb2_grpc,
)

from emulators.prism.fleet import FleetSpec
from pipeline.config import load_config
from pipeline.run import run
from pipeline.setup import STEPS, SetupError, run_setup, secret_data_of
from schemas import load_json_schema
from schemas.identity import SECRET_SCHEMA_ID, SERVICE_ACCOUNT_SCHEMA_ID
from tests.helpers import PRISM_PASSWORD, ROOT, account_entry, state, write_config

SPEC = FleetSpec(seed=17, prism_centrals=2, clusters=1, hosts_per_cluster=1, vms=12, disks_per_vm=1)
IDENTITY_STEPS = [s for s in STEPS if s.name in ("provider", "schemas", "service_accounts")]
PROJECT = "project-nutanix"  # a project of the emulator's default configuration


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)


def setup_config(tmp_path, servers, emu, monkeypatch, *, domain_admin=None, workspace_owner=None,
                 project_id=PROJECT, name="config.yaml", **extra) -> str:
    """A config whose cloudforet.setup names the emulator's domain app and workspace app."""
    monkeypatch.setenv("TEST_CF_ADMIN_TOKEN", emu.app_token("app-nutanix-setup"))
    monkeypatch.setenv("TEST_CF_TOKEN", emu.app_token())
    monkeypatch.setenv("TEST_CF_PASSWORD", "collector-pass")  # the emulator's default DOMAIN_ADMIN user
    path = write_config(tmp_path, servers, emu, name=name, cost_mode="datasource")
    raw = yaml.safe_load(open(path))
    setup = {"domain_admin": domain_admin or {"token_env": "TEST_CF_ADMIN_TOKEN"},
             "workspace_owner": workspace_owner or {"token_env": "TEST_CF_TOKEN"}}
    if project_id:
        setup["project_id"] = project_id
    raw["cloudforet"]["setup"] = setup
    raw.update(extra)
    with open(path, "w") as fh:
        yaml.safe_dump(raw, fh)
    return path


def identity_state(emu) -> dict:
    return {"providers": emu.store.providers(), "schemas": emu.store.schemas(),
            "service_accounts": emu.store.service_accounts(), "secrets": emu.store.secrets()}


def test_setup_from_empty_then_again_changes_nothing(tmp_path, prism_servers, cloudforets, monkeypatch):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    config = load_config(setup_config(tmp_path, servers, emu, monkeypatch))
    lines: list[str] = []
    counts = run_setup(config, out=lines.append)  # every step
    # provider, 2 schemas, 2 service accounts, 4 cloud service types, a namespace and 4 metrics
    assert counts == {"created": 1 + 2 + 2 + 4 + 1 + 4}, lines
    types = {(t["group"], t["name"]): t for t in emu.store.cloud_service_types()}
    assert set(types) == {("Compute", "Instance"), ("Storage", "Disk"), ("Cluster", "Cluster"), ("Host", "Host")}
    assert all(t["metadata"]["view"]["table"]["layout"]["options"]["fields"] for t in types.values())

    (provider,) = emu.store.providers()
    assert (provider["provider"], provider["name"], provider["color"]) == ("nutanix", "Nutanix", "#024DA1")
    schemas = {s["schema_id"]: s for s in emu.store.schemas()}
    assert schemas[SECRET_SCHEMA_ID]["schema_type"] == "SECRET"
    # the very file the collector validates secrets with (transforms/common/credentials.py)
    assert schemas[SECRET_SCHEMA_ID]["schema"] == load_json_schema("nutanix_secret.schema.json")
    assert schemas[SERVICE_ACCOUNT_SCHEMA_ID]["related_schemas"] == [SECRET_SCHEMA_ID]
    accounts = {sa["name"]: sa for sa in emu.store.service_accounts()}
    assert set(accounts) == {s.pc.name for s in servers}
    secrets = {s["secret_id"]: s for s in emu.store.secrets()}
    for s in servers:
        sa = accounts[s.pc.name]
        assert (sa["provider"], sa["project_id"], sa["secret_schema_id"]) == ("nutanix", PROJECT, SECRET_SCHEMA_ID)
        assert "secret_data" not in sa  # the secret is the secret service's, the account only names it
        assert secrets[sa["secret_id"]]["data"] == {
            "nutanix_host": s.host, "nutanix_port": s.port, "nutanix_username": "admin",
            "nutanix_password": PRISM_PASSWORD, "verify_ssl": True, "scheme": "http"}

    before = identity_state(emu), emu.store.cloud_service_types()
    again: list[str] = []
    counts = run_setup(config, out=again.append)
    assert counts == {"unchanged": 14}, again
    assert again[-1].startswith("setup: nothing to change")
    assert not any(".create" in line or ".update" in line for line in again), again
    assert (identity_state(emu), emu.store.cloud_service_types()) == before


def test_dry_run_prints_the_calls_and_changes_nothing(tmp_path, prism_servers, cloudforets, monkeypatch):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    config = load_config(setup_config(tmp_path, servers, emu, monkeypatch))
    lines: list[str] = []
    counts = run_setup(config, dry_run=True, out=lines.append)  # every step
    assert counts == {"created": 14}
    text = "\n".join(lines)
    assert text.count("would call Provider.create") == 1
    assert text.count("would call Schema.create") == 2
    assert text.count("would call ServiceAccount.create") == 2
    assert text.count("would call CloudServiceType.create") == 4
    assert text.count("would call Namespace.create") == 1 and text.count("would call Metric.create") == 4
    assert PRISM_PASSWORD not in text
    assert identity_state(emu) == {"providers": [], "schemas": [], "service_accounts": [], "secrets": []}
    assert emu.store.cloud_service_types() == []
    assert lines[-1].startswith("setup --dry-run: nothing was changed")

    run_setup(config, out=lambda line: None)
    assert run_setup(config, dry_run=True, out=lines.append) == {"unchanged": 14}  # what the real run left
    assert lines[-1] == "setup --dry-run: nothing was changed; nothing would be written"


def test_update_secrets_replaces_only_with_the_flag(tmp_path, prism_servers, cloudforets, monkeypatch):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    config = load_config(setup_config(tmp_path, servers, emu, monkeypatch))
    run_setup(config, steps=IDENTITY_STEPS, out=lambda line: None)
    first = {sa["name"]: sa["secret_id"] for sa in emu.store.service_accounts()}
    monkeypatch.setenv("TEST_PRISM_PASSWORD", "rotated-Pa55-word!")
    assert run_setup(config, steps=IDENTITY_STEPS, out=lambda line: None) == {"unchanged": 5}
    assert {sa["name"]: sa["secret_id"] for sa in emu.store.service_accounts()} == first

    counts = run_setup(config, steps=IDENTITY_STEPS, update_secrets=True, out=lambda line: None)
    assert counts["replaced"] == 2
    now = {sa["name"]: sa["secret_id"] for sa in emu.store.service_accounts()}
    assert set(now.values()).isdisjoint(first.values())
    secrets = {s["secret_id"]: s["data"] for s in emu.store.secrets()}
    assert set(secrets) == set(now.values())  # identity deletes the old secret (update_secret_data)
    assert all(d["nutanix_password"] == "rotated-Pa55-word!" for d in secrets.values())


# -- roles: as identity 2.0.227's @transaction(role_types=...) refuses them ----------------------------
def _md(token: str) -> tuple:
    return (("token", token),)


def _code(call, request, token: str) -> grpc.StatusCode:
    try:
        call(request, metadata=_md(token), timeout=10)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_each_call_is_refused_where_identity_refuses_the_role(cloudforets):
    emu = cloudforets("cf")
    channel = grpc.insecure_channel(emu.endpoint)
    providers, schemas = provider_pb2_grpc.ProviderStub(channel), schema_pb2_grpc.SchemaStub(channel)
    accounts = service_account_pb2_grpc.ServiceAccountStub(channel)
    admin, owner = emu.app_token("app-nutanix-setup"), emu.app_token()
    provider = provider_pb2.CreateProviderRequest(provider="nutanix", name="Nutanix")
    schema = schema_pb2.CreateSchemaRequest(schema_id="s", name="s", schema_type="SERVICE_ACCOUNT",
                                            provider="nutanix", schema=struct_pb2.Struct())
    account = service_account_pb2.CreateServiceAccountRequest(name="pc", provider="nutanix",
                                                              data=struct_pb2.Struct(), project_id=PROJECT)
    # ProviderService.create / SchemaService.create: role_types=["DOMAIN_ADMIN"]
    assert _code(providers.create, provider, owner) == grpc.StatusCode.PERMISSION_DENIED
    assert _code(schemas.create, schema, owner) == grpc.StatusCode.PERMISSION_DENIED
    # ServiceAccountService.create: role_types=["WORKSPACE_OWNER", "WORKSPACE_MEMBER"]
    assert _code(accounts.create, account, admin) == grpc.StatusCode.PERMISSION_DENIED
    # without the provider's SERVICE_ACCOUNT schema: ERROR_SCHEMA_IS_NOT_DEFINED
    assert _code(accounts.create, account, owner) == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(providers.create, provider, admin) == grpc.StatusCode.OK
    assert _code(providers.create, provider, admin) == grpc.StatusCode.ALREADY_EXISTS
    dollar = schema_pb2.CreateSchemaRequest(schema_id="d", name="d", schema_type="SECRET", provider="nutanix")
    dollar.schema.update({"$schema": "https://json-schema.org/draft/2020-12/schema"})
    assert _code(schemas.create, dollar, admin) == grpc.StatusCode.INTERNAL  # mongoengine refuses '$' keys
    assert _code(schemas.create, schema, admin) == grpc.StatusCode.OK
    assert _code(accounts.create, account, owner) == grpc.StatusCode.OK
    assert _code(accounts.create, account, owner) == grpc.StatusCode.ALREADY_EXISTS  # name per project
    (sa,) = emu.store.service_accounts()
    update = service_account_pb2.UpdateServiceAccountSecretRequest(
        service_account_id=sa["service_account_id"], secret_schema_id="s", secret_data=struct_pb2.Struct())
    update.secret_data.update({"a": 1})
    # update_secret_data allows DOMAIN_ADMIN, but a domain token carries no workspace_id, which
    # ServiceAccountUpdateSecretRequest requires (spaceone-core SpaceONEMutationHandler injects none)
    assert _code(accounts.update_secret_data, update, admin) == grpc.StatusCode.INVALID_ARGUMENT
    # a SERVICE_ACCOUNT schema is no SECRET schema: ERROR_SCHEMA_ID_IS_NOT_DEFINED
    assert _code(accounts.update_secret_data, update, owner) == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()


def test_a_swapped_credential_names_the_role_and_what_it_was_needed_for(tmp_path, prism_servers, cloudforets,
                                                                        monkeypatch):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    config = load_config(setup_config(tmp_path, servers, emu, monkeypatch,
                                      domain_admin={"token_env": "TEST_CF_TOKEN"}))
    with pytest.raises(SetupError) as err:
        run_setup(config, steps=IDENTITY_STEPS, out=lambda line: None)
    assert err.value.exit_code == 2
    text = str(err.value)
    assert "cloudforet.setup.domain_admin" in text and "WORKSPACE_OWNER" in text and "DOMAIN_ADMIN" in text
    assert "Provider nutanix" in text and SECRET_SCHEMA_ID in text
    assert emu.store.providers() == []


def test_a_user_refused_by_the_server_names_the_role(tmp_path, prism_servers, monkeypatch):
    """A WORKSPACE_OWNER user named as the domain admin: the emulated identity refuses its DOMAIN grant
    (PERMISSION_DENIED), and setup says which role and objects it was for."""
    from emulators.cloudforet.config import EmulatorConfig
    from emulators.cloudforet.server import CloudForetEmulator
    servers = prism_servers(SPEC)
    emu = CloudForetEmulator(str(tmp_path / "owner.sqlite"), EmulatorConfig(users=[
        {"user_id": "owner@example.com", "password": "owner-pass", "role_type": "WORKSPACE_OWNER"}])).start()
    try:
        monkeypatch.setenv("TEST_OWNER_PASSWORD", "owner-pass")
        config = load_config(setup_config(tmp_path, servers, emu, monkeypatch, domain_admin={
            "user_id": "owner@example.com", "password_env": "TEST_OWNER_PASSWORD"}))
        with pytest.raises(SetupError) as err:
            run_setup(config, steps=IDENTITY_STEPS, out=lambda line: None)
        assert err.value.exit_code == 2
        assert "cloudforet.setup.domain_admin (DOMAIN_ADMIN, needed for Provider nutanix" in str(err.value)
        assert "PERMISSION_DENIED" in str(err.value) and "owner-pass" not in str(err.value)
    finally:
        emu.stop()


def test_a_missing_credential_or_variable_names_the_role(tmp_path, prism_servers, cloudforets, monkeypatch):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    path = setup_config(tmp_path, servers, emu, monkeypatch)
    raw = yaml.safe_load(open(path))
    del raw["cloudforet"]["setup"]["workspace_owner"]
    open(path, "w").write(yaml.safe_dump(raw))
    lines: list[str] = []
    with pytest.raises(SetupError) as err:
        run_setup(load_config(path), steps=IDENTITY_STEPS, out=lines.append)
    assert "cloudforet.setup.workspace_owner is missing" in str(err.value)
    assert "ServiceAccounts (" in str(err.value) and "WORKSPACE_OWNER" in str(err.value)
    assert len(emu.store.providers()) == 1  # the domain steps before it ran

    path = setup_config(tmp_path, servers, emu, monkeypatch, name="c2.yaml")
    monkeypatch.delenv("TEST_CF_ADMIN_TOKEN")
    with pytest.raises(SetupError) as err:
        run_setup(load_config(path), steps=IDENTITY_STEPS, out=lines.append)
    assert "cloudforet.setup.domain_admin (DOMAIN_ADMIN, needed for Provider nutanix" in str(err.value)
    assert "TEST_CF_ADMIN_TOKEN is empty or unset" in str(err.value) and err.value.exit_code == 2


def test_an_unset_prism_password_stops_before_any_service_account(tmp_path, prism_servers, cloudforets,
                                                                 monkeypatch):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    config = load_config(setup_config(tmp_path, servers, emu, monkeypatch))
    monkeypatch.delenv("TEST_PRISM_PASSWORD")
    with pytest.raises(SetupError) as err:
        run_setup(config, steps=IDENTITY_STEPS, out=lambda line: None)
    assert "TEST_PRISM_PASSWORD" in str(err.value) and err.value.exit_code == 2
    assert emu.store.service_accounts() == []


def test_secret_data_is_what_the_collector_reads_back():
    from transforms.common.credentials import credentials_from_secret
    from transforms.settings import AccountConfig
    account = AccountConfig(name="pc", host="pc.example.com", port=9440, username="admin",
                            password_env="TEST_PRISM_PASSWORD", ca_bundle="/etc/ca.pem")
    data = secret_data_of(account)
    creds = credentials_from_secret(AccountConfig(name="pc", secret_id="s", ca_bundle="/etc/ca.pem"), data)
    assert (creds.host, creds.port, creds.username, creds.password, creds.verify_ssl, creds.scheme) == (
        "pc.example.com", 9440, "admin", PRISM_PASSWORD, True, "https")


# -- the command line: secrets never in any output ------------------------------------------------------
def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "setup", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_cli_at_debug_prints_no_secret_dry_run_included(tmp_path, prism_servers, cloudforets, monkeypatch):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    path = setup_config(tmp_path, servers, emu, monkeypatch)
    env = {k: os.environ[k] for k in ("TEST_PRISM_PASSWORD", "TEST_CF_ADMIN_TOKEN", "TEST_CF_TOKEN")}
    outputs = []
    for args in (["--dry-run"], [], ["--update-secrets"]):
        done = _cli("--config", path, "--log-level", "DEBUG", *args, env=env)
        outputs.append(done.stdout + done.stderr)
        assert done.returncode == 0, done.stderr[-2000:]
    for text in outputs:
        assert PRISM_PASSWORD not in text
        assert env["TEST_CF_ADMIN_TOKEN"] not in text and env["TEST_CF_TOKEN"] not in text
    assert "would call ServiceAccount.create" in outputs[0]
    assert "ServiceAccount.update_secret_data" in outputs[2]


# -- a run from the service accounts ------------------------------------------------------------------
def test_a_run_from_service_accounts_equals_a_run_from_the_config_file(tmp_path, prism_servers, cloudforets,
                                                                      monkeypatch):
    servers = prism_servers(SPEC)
    from_sas, from_file = cloudforets("from-sas"), cloudforets("from-file")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    path = setup_config(tmp_path / "a", servers, from_sas, monkeypatch)
    run_setup(load_config(path), steps=IDENTITY_STEPS, out=lambda line: None)
    ids = {sa["name"]: sa["service_account_id"] for sa in from_sas.store.service_accounts()}

    # api cost mode: costs carry service_account_id (a DOMAIN_ADMIN user granted in the workspace)
    user = {"user_id": "collector@example.com", "password_env": "TEST_CF_PASSWORD"}
    raw = yaml.safe_load(open(path))
    raw.update(accounts_from="service_accounts")
    raw["cloudforet"].update(auth=user, cost_mode="api", cost_project_id=PROJECT)
    del raw["accounts"]  # nothing of the file's accounts: everything from CloudForet
    open(path, "w").write(yaml.safe_dump(raw))
    args = ["--collected-at", "2026-11-28T06:00:00Z"]
    assert run(["--config", path, *args]) == 0

    accounts = [{**account_entry(s), "service_account_id": ids[s.pc.name]} for s in servers]
    other = write_config(tmp_path / "b", servers, from_file, accounts=accounts, cost_project_id=PROJECT)
    assert run(["--config", other, *args]) == 0
    got = state(from_sas)
    assert got == state(from_file)
    assert len(got["services"]) > 12 and got["costs"]
    assert {c["service_account_id"] for c in got["costs"]} == set(ids.values())


def test_the_schemas_are_storable_by_identity():
    """identity's Schema.schema is a mongoengine DictField: no key may start with '$' or hold a '.'
    (mongoengine DictField.validate), or Schema.create fails on a real server."""
    from schemas.identity import provider_definition, schema_definitions

    def keys(value):
        if isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from keys(v)
        elif isinstance(value, list):
            for v in value:
                yield from keys(v)

    for definition in schema_definitions():
        bad = [k for k in keys(definition["schema"]) if k.startswith("$") or "." in k]
        assert not bad, (definition["schema_id"], bad)
        assert len(definition["schema_id"]) <= 40 and len(definition["name"]) <= 40  # StringField(max_length=40)
    provider = provider_definition()
    assert all(len(provider[k]) <= 40 for k in ("provider", "name", "alias")) and len(provider["color"]) <= 7


def test_accounts_from_service_accounts_keeps_the_usable_ones_and_says_why_not_the_others(tmp_path, monkeypatch):
    from emulators.cloudforet.config import EmulatorConfig
    from emulators.cloudforet.server import CloudForetEmulator
    from pipeline.service_accounts import accounts_from_service_accounts
    from transforms.settings import AccountConfig
    secret = {"nutanix_host": "pc-a.example.com", "nutanix_username": "u", "nutanix_password": "p"}
    cfg = EmulatorConfig(secrets={"secret-a": secret, "secret-c": secret}, service_accounts=[
        {"service_account_id": "sa-a", "name": "pc-a", "provider": "nutanix", "secret_id": "secret-a"},
        {"service_account_id": "sa-b", "name": "pc-b", "provider": "nutanix"},
        {"service_account_id": "sa-c", "name": "PC C", "provider": "nutanix", "secret_id": "secret-c"},
        {"service_account_id": "sa-x", "name": "pc-x", "provider": "nutanix", "secret_id": "secret-a",
         "workspace_id": "workspace-other"},
        {"service_account_id": "sa-aws", "name": "aws", "provider": "aws", "secret_id": "secret-a"}])
    with CloudForetEmulator(str(tmp_path / "cf.sqlite"), cfg) as emu:
        monkeypatch.setenv("TEST_CF_TOKEN", emu.app_token())
        path = write_config(tmp_path, [], emu, cost_mode="datasource", accounts=[
            {"name": "pc-a", "host": "ignored.example.com", "username": "ignored", "password_env": "NOPE",
             "ca_bundle": "/etc/pc-a-ca.pem", "verify_ssl": True}])
        raw = yaml.safe_load(open(path))
        raw["accounts_from"] = "service_accounts"
        open(path, "w").write(yaml.safe_dump(raw))
        config, warnings = accounts_from_service_accounts(load_config(path))
    # the file's pc-a lends its local settings, never its host or credentials
    assert config.accounts == (AccountConfig(name="pc-a", secret_id="secret-a", service_account_id="sa-a",
                                             ca_bundle="/etc/pc-a-ca.pem", verify_ssl=True),)
    assert len(warnings) == 2  # sa-x is another workspace's, sa-aws another provider's: not listed at all
    assert any("pc-b (sa-b) has no secret" in w for w in warnings)
    assert any("'PC C' (sa-c): its name is not a valid account name" in w for w in warnings)


def test_help_names_setup_and_its_roles():
    done = subprocess.run([sys.executable, "-m", "pipeline", "setup", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0
    assert "domain_admin" in done.stdout and "workspace_owner" in done.stdout and "--dry-run" in done.stdout
    top = subprocess.run([sys.executable, "-m", "pipeline", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "python -m pipeline setup --config FILE" in top.stdout


def test_a_provider_made_by_hand_is_updated_to_the_definition(tmp_path, cloudforets, monkeypatch):
    """A provider someone created with a name only (as tests/conformance seeds it): setup updates the
    fields that differ (identity ProviderService.update), and only once."""
    emu = cloudforets("cf")
    with grpc.insecure_channel(emu.endpoint) as channel:
        provider_pb2_grpc.ProviderStub(channel).create(provider_pb2.CreateProviderRequest(
            provider="nutanix", name="Nutanix"), metadata=_md(emu.app_token("app-nutanix-setup")), timeout=10)
    config = load_config(setup_config(tmp_path, [], emu, monkeypatch))
    lines: list[str] = []
    assert run_setup(config, steps=IDENTITY_STEPS[:1], out=lines.append) == {"updated": 1}
    assert '"changed": ["alias", "color", "icon"]' in lines[1]
    (provider,) = emu.store.providers()
    assert (provider["alias"], provider["color"], provider["icon"][:26]) == ("Nutanix", "#024DA1",
                                                                           "data:image/svg+xml;base64,")
    assert run_setup(config, steps=IDENTITY_STEPS[:1], out=lines.append) == {"unchanged": 1}


def test_cli_exit_codes_name_the_role_or_the_address(tmp_path, prism_servers, cloudforets, monkeypatch):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    path = setup_config(tmp_path, servers, emu, monkeypatch)
    env = {"TEST_PRISM_PASSWORD": PRISM_PASSWORD, "TEST_CF_TOKEN": os.environ["TEST_CF_TOKEN"],
           "TEST_CF_ADMIN_TOKEN": ""}
    done = _cli("--config", path, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "cloudforet.setup.domain_admin (DOMAIN_ADMIN, needed for Provider nutanix" in done.stderr
    assert "TEST_CF_ADMIN_TOKEN is empty or unset" in done.stderr
    emu.stop()  # nothing answers at its address any more
    env["TEST_CF_ADMIN_TOKEN"] = os.environ["TEST_CF_ADMIN_TOKEN"]
    done = _cli("--config", path, env=env)
    assert done.returncode == 3, done.stderr[-2000:]
    assert emu.endpoint in done.stderr


def test_a_service_account_renamed_onto_another_name_is_refused(cloudforets):
    """ServiceAccount.update: the name stays unique per domain, workspace and project (MongoModel.update)."""
    emu = cloudforets("cf")
    with grpc.insecure_channel(emu.endpoint) as channel:
        schemas = schema_pb2_grpc.SchemaStub(channel)
        schemas.create(schema_pb2.CreateSchemaRequest(schema_id="s", name="s", schema_type="SERVICE_ACCOUNT",
                                                      provider="nutanix", schema=struct_pb2.Struct()),
                       metadata=_md(emu.app_token("app-nutanix-setup")), timeout=10)
        accounts = service_account_pb2_grpc.ServiceAccountStub(channel)
        owner = emu.app_token()
        ids = [accounts.create(service_account_pb2.CreateServiceAccountRequest(
            name=name, provider="nutanix", data=struct_pb2.Struct(), project_id=PROJECT), metadata=_md(owner),
            timeout=10).service_account_id for name in ("pc-a", "pc-b")]
        rename = service_account_pb2.UpdateServiceAccountRequest(service_account_id=ids[1], name="pc-a")
        assert _code(accounts.update, rename, owner) == grpc.StatusCode.ALREADY_EXISTS
        rename.name = "pc-c"
        assert _code(accounts.update, rename, owner) == grpc.StatusCode.OK
        rename.name = "pc-b"  # the old name is free again
        rename.service_account_id = ids[0]
        assert _code(accounts.update, rename, owner) == grpc.StatusCode.OK
    assert sorted(sa["name"] for sa in emu.store.service_accounts()) == ["pc-b", "pc-c"]
