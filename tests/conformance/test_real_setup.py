"""``python -m pipeline setup``'s domain steps against the REAL identity 2.0.227, and the roles and
errors of its Provider, Schema and ServiceAccount calls, the same on the real service and the emulator.

Only identity runs (no cost-analysis): the module starts its own, seeded without service accounts.
ServiceAccount.create is not sent with a body here: identity 2.0.227 is built on spaceone-api 2.0.350,
whose CreateServiceAccountRequest numbers project_id differently from the collector's 2.0.435
(seed_service_accounts.py); its role check runs before the body is read, so the refusal is compared.
"""
from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2
from spaceone.api.identity.v2 import (
    provider_pb2,
    provider_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
    service_account_pb2,
    service_account_pb2_grpc,
)

from emulators.cloudforet.server import CloudForetEmulator
from pipeline.config import parse_config
from pipeline.setup import STEPS, run_setup
from schemas.identity import SECRET_SCHEMA_ID, SERVICE_ACCOUNT_SCHEMA_ID
from schemas.identity import schema_definitions as identity_schemas

from .services import RealCloudForet

DOMAIN_STEPS = [s for s in STEPS if s.name in ("provider", "schemas")]


@pytest.fixture(scope="module")
def real_identity(tmp_path_factory):
    cf = RealCloudForet(tmp_path_factory.mktemp("real-identity"))
    try:
        cf.start_identity().seed_identity(service_accounts=False)
    except BaseException:
        for p in cf.processes:
            print(f"--- {p.name} ---\n{p.tail()}")
        cf.stop()
        raise
    yield cf
    cf.stop()


def setup_config(cf: RealCloudForet):
    return parse_config({"cloudforet": {
        "endpoints": {"identity": f"grpc://{cf.identity_endpoint}"}, "domain_id": cf.domain_id,
        "workspace_id": cf.workspace_id, "auth": {"token_env": "CONFORMANCE_WS_APP"},
        "setup": {"domain_admin": {"token_env": "CONFORMANCE_DOMAIN_APP"},
                  "workspace_owner": {"token_env": "CONFORMANCE_WS_APP"}}}})


def test_setup_makes_the_provider_and_schemas_then_changes_nothing(real_identity, monkeypatch):
    monkeypatch.setenv("CONFORMANCE_DOMAIN_APP", real_identity.apps["domain-admin-app"])
    monkeypatch.setenv("CONFORMANCE_WS_APP", real_identity.apps["workspace-owner-app"])
    config = setup_config(real_identity)
    lines: list[str] = []
    assert run_setup(config, steps=DOMAIN_STEPS, out=lines.append) == {"created": 3}, lines
    channel = real_identity.channel(real_identity.identity_port)
    md = (("token", real_identity.apps["workspace-owner-app"]),)  # Provider/Schema reads: any workspace role
    provider = provider_pb2_grpc.ProviderStub(channel).get(provider_pb2.ProviderRequest(provider="nutanix"),
                                                           metadata=md, timeout=30)
    assert (provider.name, provider.alias, provider.color, provider.order) == ("Nutanix", "Nutanix", "#024DA1", 10)
    schemas = schema_pb2_grpc.SchemaStub(channel)
    held = real_identity.to_dict(schemas.get(schema_pb2.SchemaRequest(schema_id=SECRET_SCHEMA_ID), metadata=md,
                                             timeout=30))
    assert held["schema"] == identity_schemas()[0]["schema"]  # the file the collector validates with
    sa_schema = schemas.get(schema_pb2.SchemaRequest(schema_id=SERVICE_ACCOUNT_SCHEMA_ID), metadata=md, timeout=30)
    assert list(sa_schema.related_schemas) == [SECRET_SCHEMA_ID]

    again: list[str] = []
    assert run_setup(config, steps=DOMAIN_STEPS, out=again.append) == {"unchanged": 3}, again
    assert again[-1].startswith("setup: nothing to change")


def _code(call, request, token: str) -> str:
    try:
        call(request, metadata=(("token", token),), timeout=30)
    except grpc.RpcError as err:
        return err.code().name
    return "OK"


def _codes(channel: grpc.Channel, admin: str, owner: str) -> dict[str, str]:
    providers, schemas = provider_pb2_grpc.ProviderStub(channel), schema_pb2_grpc.SchemaStub(channel)
    accounts = service_account_pb2_grpc.ServiceAccountStub(channel)
    provider = provider_pb2.CreateProviderRequest(provider="conformance-dup", name="Dup")
    schema = schema_pb2.CreateSchemaRequest(schema_id="conformance-s", name="s", schema_type="SECRET",
                                            provider="conformance-dup", schema=struct_pb2.Struct())
    dollar = schema_pb2.CreateSchemaRequest(schema_id="conformance-d", name="d", schema_type="SECRET",
                                            provider="conformance-dup")
    dollar.schema.update({"$schema": "https://json-schema.org/draft/2020-12/schema"})
    secret = service_account_pb2.UpdateServiceAccountSecretRequest(service_account_id="sa-nope",
                                                                   secret_schema_id="conformance-s")
    secret.secret_data.update({"a": "b"})
    return {
        "Provider.create by a workspace owner": _code(providers.create, provider, owner),
        "Schema.create by a workspace owner": _code(schemas.create, schema, owner),
        "ServiceAccount.create by a domain admin": _code(
            accounts.create, service_account_pb2.CreateServiceAccountRequest(name="x", provider="nutanix"), admin),
        "Provider.get of a missing provider": _code(
            providers.get, provider_pb2.ProviderRequest(provider="conformance-nope"), owner),
        "Provider.create": _code(providers.create, provider, admin),
        "Provider.create again": _code(providers.create, provider, admin),
        "Schema.create with a '$' key": _code(schemas.create, dollar, admin),
        "ServiceAccount.update_secret_data by a domain admin (no workspace)": _code(
            accounts.update_secret_data, secret, admin),
    }


def test_roles_and_errors_are_the_emulators(real_identity, tmp_path):
    real = _codes(real_identity.channel(real_identity.identity_port), real_identity.apps["domain-admin-app"],
                  real_identity.apps["workspace-owner-app"])
    with CloudForetEmulator(str(tmp_path / "emu.sqlite")) as emu, grpc.insecure_channel(emu.endpoint) as ch:
        emulated = _codes(ch, emu.app_token("app-nutanix-setup"), emu.app_token())
    assert real == emulated
    assert real["Provider.create by a workspace owner"] == "PERMISSION_DENIED"
    assert real["ServiceAccount.create by a domain admin"] == "PERMISSION_DENIED"
    assert real["Provider.create again"] == "ALREADY_EXISTS"


def test_a_run_lists_the_real_identitys_service_accounts(real_identity, monkeypatch):
    """accounts_from: service_accounts against the real ServiceAccount.list (provider and state filters;
    its request is numbered alike in both spaceone-api versions). The accounts are made with identity's
    own stubs (seed_service_accounts.py) and hold no secret (no secret service runs here): the run
    names them and stops, exit 2 in the command line."""
    import os
    import subprocess

    from pipeline.config import ConfigError
    from pipeline.service_accounts import accounts_from_service_accounts

    from . import venvs
    from .services import HERE

    monkeypatch.setenv("CONFORMANCE_DOMAIN_APP", real_identity.apps["domain-admin-app"])
    monkeypatch.setenv("CONFORMANCE_WS_APP", real_identity.apps["workspace-owner-app"])
    config = setup_config(real_identity)
    run_setup(config, steps=DOMAIN_STEPS, out=lambda line: None)  # the SERVICE_ACCOUNT schema they are checked by
    subprocess.run([str(venvs.ensure("identity")), str(HERE / "seed_service_accounts.py"),
                    real_identity.identity_endpoint, real_identity.project_id, "pc-east", "pc-west"],
                   env={**os.environ, "SEED_TOKEN": real_identity.apps["workspace-owner-app"]}, check=True,
                   timeout=60)
    with pytest.raises(ConfigError) as err:
        accounts_from_service_accounts(config)
    assert "no ACTIVE service account of provider nutanix with a secret" in str(err.value)
    assert "(2 without a usable secret or name)" in str(err.value)


def test_an_app_cannot_change_scope(real_identity, tmp_path):
    """identity TokenService.grant: an App's client secret is no user's refresh token, so it cannot be
    granted another scope; hence setup's two credentials. The real answer and the emulator's."""
    from spaceone.api.identity.v2 import token_pb2, token_pb2_grpc

    def grant(channel: grpc.Channel, app_token: str, domain_id: str, workspace_id: str) -> str:
        req = token_pb2.GrantTokenRequest(grant_type="REFRESH_TOKEN", token=app_token, scope="WORKSPACE",
                                          workspace_id=workspace_id, domain_id=domain_id)
        try:
            token_pb2_grpc.TokenStub(channel).grant(req, timeout=30)
        except grpc.RpcError as err:
            return err.code().name
        return "OK"

    real = grant(real_identity.channel(real_identity.identity_port), real_identity.apps["domain-admin-app"],
                 real_identity.domain_id, real_identity.workspace_id)
    with CloudForetEmulator(str(tmp_path / "emu.sqlite")) as emu, grpc.insecure_channel(emu.endpoint) as ch:
        emulated = grant(ch, emu.app_token("app-nutanix-setup"), emu.config.domain_id, emu.config.workspace_id)
    assert real != "OK"
    assert emulated == real
