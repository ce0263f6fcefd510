"""The collector's CloudForet-facing work against the REAL identity 2.0.227 and cost-analysis 2.0.108.

Run with ``./run.sh conformance`` (not part of ``./run.sh test``). The servers
are the PyPI packages under spaceone-core's own handlers (services.py); what
they answer here is what a deployment of those versions answers.
"""
from __future__ import annotations

import json
import subprocess
from collections import Counter

import apache_beam as beam
import pytest
import yaml
from spaceone.api.cost_analysis.v1 import cost_pb2

from connectors import cloudforet
from connectors.cloudforet import CloudForetAuth, CloudForetClient
from connectors.errors import CloudForetError
from pipeline.config import parse_config
from pipeline.cost_preflight import check_cost_api
from pipeline.run import run
from transforms.settings import Rate, RateCard, RunContext
from transforms.sinks.cost_analysis import WriteToCostAnalysis, _WriteCostFn, reader_auth
from transforms.sinks.files.cost_store import WriteToCostStore
from transforms.stages.cost import ExtractCost

from . import venvs
from .services import HERE

ADMIN = "reader@example.com"  # the DOMAIN_ADMIN user of the seed
OWNER = "collector@example.com"  # a WORKSPACE_OWNER only
MEMBER = "member@example.com"  # a WORKSPACE_MEMBER
CARD = RateCard(default=Rate(vcpu_hour=0.02, gib_ram_hour=0.005, gib_storage_month=0.05, currency="USD"))


def resources(n_vms: int, account: str = "pc-conformance") -> list[dict]:
    """VMs (two usage types each) and one disk per VM, as NormalizeVm hands them to ExtractCost (sized from
    Prism's status: ``size_known``)."""
    out = []
    cluster = {"uuid": "c-1", "name": "cluster-1"}
    for i in range(n_vms):
        common = {"account": account, "region_code": f"nutanix-{account}", "tags": {"Env": "conformance"}}
        out.append({**common, "kind": "vm", "resource_id": f"vm-{i:03d}", "name": f"vm-{i}",
                    "cloud_service_type": "VirtualMachine",
                    "data": {"power_state": "ON", "vcpus": 2, "memory_gib": 4, "cluster": cluster,
                             "size_known": True}})
        out.append({**common, "kind": "disk", "resource_id": f"disk-{i:03d}", "name": f"disk-{i}",
                    "cloud_service_type": "Disk", "data": {"size_gib": 50 + i, "cluster": cluster, "size_known": True}})
    return out


def raw_config(cf, tmp_path, auth: dict | None = None, **cloudforet) -> dict:
    """A collector config for the real services; a key given as None is left out."""
    raw = {
        "accounts": [{"name": "pc-conformance", "host": "127.0.0.1", "username": "admin",
                      "password_env": "CONFORMANCE_PRISM_PASSWORD"}],
        "cloudforet": {
            "endpoints": {"identity": f"grpc://{cf.identity_endpoint}", "cost_analysis": f"grpc://{cf.cost_endpoint}",
                          # not run: nothing in these cases may reach them
                          "inventory": "grpc://127.0.0.1:9", "notification": "grpc://127.0.0.1:9"},
            "domain_id": cf.domain_id, "workspace_id": cf.workspace_id,
            "auth": auth or {"user_id": ADMIN, "password_env": "CONFORMANCE_CF_PASSWORD"},
            "cost_mode": "api", "cost_project_id": cf.project_id, "cost_data_source_id": cf.data_source_id,
            "batch_size": 7, "max_attempts": 3, **cloudforet},
        "report": {"path": str(tmp_path / "report.json")},
    }
    raw["cloudforet"] = {k: v for k, v in raw["cloudforet"].items() if v is not None}
    return raw


@pytest.fixture
def env(monkeypatch, real_cf):
    monkeypatch.setenv("CONFORMANCE_CF_PASSWORD", real_cf.users[ADMIN])
    monkeypatch.setenv("CONFORMANCE_PRISM_PASSWORD", "unused")
    # each case is a process of its own: no login of an earlier case is reused
    monkeypatch.setattr(cloudforet, "_token_providers", {})
    return monkeypatch


def collect_costs(config, day: str, items: list[dict]) -> None:
    """The collector's cost path of a run in api mode: ExtractCost -> WriteToCostAnalysis."""
    ctx = RunContext(f"run-{day}", f"{day}T06:00:00Z", 0, 0)
    with beam.Pipeline() as p:
        costs = (p | beam.Create(items) | ExtractCost(CARD, ctx, config.cloudforet.cost_data_source_id)
                 | WriteToCostAnalysis(config.cloudforet))
        costs.results | beam.Map(lambda r: r)  # the results are consumed as the pipeline's summary would


def domain_costs(real_cf, config) -> list:
    """Every cost of the data source, read back in DOMAIN scope (what a workspace scope cannot see)."""
    reader = CloudForetClient(config.cloudforet.endpoints, reader_auth(config.cloudforet.auth))
    return reader.list_costs(real_cf.data_source_id, [("provider", "nutanix", "eq")], limit=500)


def expected_keys(items: list[dict], day: str) -> set:
    return {(r["resource_id"], u, day)
            for r in items for u in (("vcpu", "memory") if r["kind"] == "vm" else ("storage",))}


# -- logins -------------------------------------------------------------------------------------

def test_user_login_is_granted_by_the_real_identity_and_refreshed_with_its_refresh_token(real_cf, env, tmp_path):
    auth = CloudForetAuth(domain_id=real_cf.domain_id, workspace_id=real_cf.workspace_id, user_id=OWNER,
                          password_env="CONFORMANCE_OWNER_PASSWORD")
    env.setenv("CONFORMANCE_OWNER_PASSWORD", real_cf.users[OWNER])
    client = CloudForetClient(parse_config(raw_config(real_cf, tmp_path, cost_mode="datasource")).cloudforet.endpoints,
                              auth)
    first = client.tokens.token()
    claims = client.token_claims()
    assert claims["rol"] == "WORKSPACE_OWNER" and claims["wid"] == real_cf.workspace_id and claims["own"] == "USER"
    client.tokens.invalidate(first)
    client.tokens.token()  # a new access token from the refresh token: no second Token.issue
    assert (client.tokens.logins, client.tokens.grants) == (1, 2)
    # the refreshed token works on the real cost-analysis (spaceone-core's authentication handler)
    assert client.list_costs(real_cf.data_source_id, [("billed_date", "1999-01-01", "eq")]) == []


def test_app_token_is_accepted_by_the_real_services(real_cf, env, tmp_path):
    env.setenv("CONFORMANCE_APP_TOKEN", real_cf.apps["workspace-owner-app"])
    config = parse_config(raw_config(real_cf, tmp_path, auth={"token_env": "CONFORMANCE_APP_TOKEN"},
                                     cost_mode="datasource"))
    client = CloudForetClient(config.cloudforet.endpoints, config.cloudforet.auth)
    assert client.token_claims()["own"] == "APP" and client.token_claims()["rol"] == "WORKSPACE_OWNER"
    assert client.get_project(real_cf.project_id)["project_id"] == real_cf.project_id


# -- what the design rests on: the real server's scopes ------------------------------------------

def test_real_server_a_workspace_token_does_not_see_what_cost_create_stored_and_a_domain_one_cannot_create(
        real_cf, env, tmp_path):
    """cost-analysis 2.0.108 CostManager._change_filter_v_workspace_id and CostService.create role_types."""
    config = parse_config(raw_config(real_cf, tmp_path))
    writer = CloudForetClient(config.cloudforet.endpoints, config.cloudforet.auth)
    reader = CloudForetClient(config.cloudforet.endpoints, reader_auth(config.cloudforet.auth))
    req = cost_pb2.CreateCostRequest(cost=1.0, provider="nutanix", usage_type="probe", resource="probe-1",
                                     billed_date="2026-10-01", data_source_id=real_cf.data_source_id,
                                     project_id=real_cf.project_id)
    created = writer.call(writer.cost.create, req, "Cost.create")
    probe = [("resource", "probe-1", "eq")]
    assert writer.list_costs(real_cf.data_source_id, probe) == []
    assert [c["cost_id"] for c in reader.list_costs(real_cf.data_source_id, probe)] == [created.cost_id]
    with pytest.raises(CloudForetError) as denied:
        reader.call(reader.cost.create, req, "Cost.create")
    assert denied.value.code == "PERMISSION_DENIED"
    writer.call(writer.cost.delete, cost_pb2.CostRequest(cost_id=created.cost_id), "Cost.delete")
    assert reader.list_costs(real_cf.data_source_id, probe) == []
    # the old collector's requests: data_source_id only in the filter, and no project_id
    from connectors.cloudforet import make_query
    old_list = cost_pb2.CostQuery(query=make_query([("data_source_id", real_cf.data_source_id, "eq")]))
    with pytest.raises(CloudForetError) as refused:
        reader.call(reader.cost.list, old_list, "Cost.list")
    assert refused.value.code == "INVALID_ARGUMENT" and "data_source_id" in str(refused.value)
    no_project = cost_pb2.CreateCostRequest()
    no_project.CopyFrom(req)
    no_project.ClearField("project_id")
    with pytest.raises(CloudForetError) as refused:
        writer.call(writer.cost.create, no_project, "Cost.create")
    assert refused.value.code == "INVALID_ARGUMENT" and "project_id" in str(refused.value)


# -- api mode exactly once ----------------------------------------------------------------------

def test_api_mode_twice_for_a_day_and_once_for_the_next_holds_each_cost_once(real_cf, env, tmp_path):
    config = parse_config(raw_config(real_cf, tmp_path))
    items = resources(12)
    # what an earlier collector left: one key stored twice
    writer = CloudForetClient(config.cloudforet.endpoints, config.cloudforet.auth)
    dup = cost_pb2.CreateCostRequest(cost=0.96, provider="nutanix", usage_type="vcpu", resource="vm-000",
                                     billed_date="2026-11-28", data_source_id=real_cf.data_source_id,
                                     project_id=real_cf.project_id)
    for _ in range(2):
        writer.call(writer.cost.create, dup, "Cost.create")
    collect_costs(config, "2026-11-28", items)
    collect_costs(config, "2026-11-28", items)
    collect_costs(config, "2026-11-29", items)
    stored = Counter((c["resource"], c["usage_type"], c["billed_date"]) for c in domain_costs(real_cf, config)
                     if c["resource"].startswith(("vm-", "disk-")) and c["billed_date"] in ("2026-11-28", "2026-11-29"))
    want = expected_keys(items, "2026-11-28") | expected_keys(items, "2026-11-29")
    assert set(stored) == want and len(want) == 12 * 3 * 2
    assert [k for k, n in stored.items() if n != 1] == []
    rows = [c for c in domain_costs(real_cf, config) if c["billed_date"] == "2026-11-29"]
    assert {c["project_id"] for c in rows} == {real_cf.project_id}
    assert {c["workspace_id"] for c in rows} == {real_cf.workspace_id}


class _LostWorker(Exception):
    pass


def test_a_bundle_retried_in_the_middle_of_a_cost_write_leaves_each_cost_once(real_cf, env, tmp_path):
    config = parse_config(raw_config(real_cf, tmp_path, batch_size=50))
    ctx = RunContext("run-retry", "2026-11-30T06:00:00Z", 0, 0)
    from transforms.stages.cost import costs_for
    records = [c for r in resources(10, account="pc-retry") for c in costs_for(r, CARD, ctx.billed_date,
                                                                              real_cf.data_source_id)]
    first = _WriteCostFn(config.cloudforet, {}, {})
    first.setup()
    real_future, sent = first.client.future, []

    def dies_after_eleven(method, request, timeout_s=None):
        if len(sent) == 11:
            raise _LostWorker("the worker went away in the middle of the batch")
        sent.append(request.resource)
        return real_future(method, request, timeout_s)

    first.client.future = dies_after_eleven
    first.start_bundle()
    with pytest.raises(_LostWorker):
        for r in records:
            list(first.process(r))
        list(first.finish_bundle())
    first.teardown()
    assert len(sent) == 11
    retry = _WriteCostFn(config.cloudforet, {}, {})  # the runner retries the bundle
    retry.setup()
    retry.start_bundle()
    out = [o for r in records for o in retry.process(r)] + list(retry.finish_bundle())
    retry.teardown()
    results = [o.value if hasattr(o, "value") else o for o in out]
    done = [r for r in results if isinstance(r, dict) and r.get("sink") == "cost"]
    assert sum(r["created"] for r in done) == len(records) - 11
    assert sum(r["already_present"] for r in done) == 11 and sum(r["failed"] for r in done) == 0
    stored = Counter((c["resource"], c["usage_type"]) for c in domain_costs(real_cf, config)
                     if c["billed_date"] == "2026-11-30")
    assert len(stored) == len(records) and set(stored.values()) == {1}


# -- start-up refusals: the collector's clear error and exit code ------------------------------

def _run(real_cf, tmp_path, capsys, **kwargs) -> tuple[int, str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw_config(real_cf, tmp_path, **kwargs)))
    code = run(["--config", str(path), "--collected-at", "2026-11-28T06:00:00Z"])
    return code, capsys.readouterr().err


def test_the_domain_admin_user_passes_every_cost_api_check(real_cf, env, tmp_path):
    check_cost_api(parse_config(raw_config(real_cf, tmp_path)))


def test_bad_password_is_exit_3_unauthenticated(real_cf, env, tmp_path, capsys):
    env.setenv("CONFORMANCE_CF_PASSWORD", "not-the-password")
    code, err = _run(real_cf, tmp_path, capsys)
    assert code == 3 and "UNAUTHENTICATED" in err and f"login as {ADMIN}" in err
    assert "not-the-password" not in err


def test_a_forged_app_token_is_refused_by_the_real_server_with_the_collectors_hint(real_cf, env, tmp_path):
    token = real_cf.apps["workspace-owner-app"]
    env.setenv("CONFORMANCE_APP_TOKEN", token[:-8] + ("A" * 8 if not token.endswith("A" * 8) else "B" * 8))
    config = parse_config(raw_config(real_cf, tmp_path, auth={"token_env": "CONFORMANCE_APP_TOKEN"},
                                     cost_mode="datasource"))
    client = CloudForetClient(config.cloudforet.endpoints, config.cloudforet.auth)
    with pytest.raises(CloudForetError) as refused:
        client.list_costs(real_cf.data_source_id, [])
    assert refused.value.code == "UNAUTHENTICATED" and "Check the CloudForet token" in str(refused.value)
    assert token[:-8] not in str(refused.value)


def test_app_token_in_api_mode_is_refused_at_start_up_naming_what_works(real_cf, env, tmp_path, capsys):
    env.setenv("CONFORMANCE_APP_TOKEN", real_cf.apps["workspace-owner-app"])
    code, err = _run(real_cf, tmp_path, capsys, auth={"token_env": "CONFORMANCE_APP_TOKEN"})
    assert code == 2 and "DOMAIN_ADMIN user" in err and "cost_mode: datasource" in err


@pytest.mark.parametrize("user, role_said", [(OWNER, "Token.grant in DOMAIN scope was refused"),
                                             (MEMBER, "is WORKSPACE_MEMBER in workspace")])
def test_a_user_without_domain_admin_is_exit_3_naming_the_role_needed(real_cf, env, tmp_path, capsys, user,
                                                                      role_said):
    env.setenv("CONFORMANCE_USER_PASSWORD", real_cf.users[user])
    code, err = _run(real_cf, tmp_path, capsys, auth={"user_id": user, "password_env": "CONFORMANCE_USER_PASSWORD"})
    assert code == 3 and role_said in err and "DOMAIN_ADMIN role binding" in err


def test_missing_project_is_exit_2(real_cf, env, tmp_path, capsys):
    code, err = _run(real_cf, tmp_path, capsys, cost_project_id=None)
    assert code == 2 and "cloudforet.cost_project_id is missing" in err


@pytest.mark.parametrize("project", ["project-does-not-exist", "other-workspace"])
def test_unknown_project_is_exit_2_naming_the_key(real_cf, env, tmp_path, capsys, project):
    if project == "other-workspace":  # a real project, of a workspace the collector does not write to
        from spaceone.api.identity.v2 import project_pb2, project_pb2_grpc
        token = real_cf.login(ADMIN, real_cf.users[ADMIN], workspace_id=real_cf.other_workspace_id)
        project = project_pb2_grpc.ProjectStub(real_cf.channel(real_cf.identity_port)).create(
            project_pb2.CreateProjectRequest(name="elsewhere", project_type="PUBLIC"),
            metadata=(("token", token),), timeout=30).project_id
    code, err = _run(real_cf, tmp_path, capsys, cost_project_id=project)
    assert code == 2 and f"cloudforet.cost_project_id = {project}: no such project" in err


# -- the real cost-analysis's plugin client and the project's cost plugin -----------------------

def test_the_real_plugin_client_calls_the_cost_plugin_and_every_record_passes_its_checks(real_cf, tmp_path):
    items = resources(8, account="pc-plugin")
    for day in ("2026-11-27", "2026-11-28"):
        ctx = RunContext(f"run-{day}", f"{day}T06:00:00Z", 0, 0)
        with beam.Pipeline() as p:
            (p | beam.Create(items) | ExtractCost(CARD, ctx, real_cf.data_source_id)
             | WriteToCostStore(str(real_cf.plugin_store / "costs"), ctx.run_id))
    out = subprocess.run([str(venvs.python_of("cost-analysis")), str(HERE / "plugin_check.py"),
                          f"grpc://{real_cf.plugin_endpoint}", real_cf.domain_id, "2026-11-01"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["tasks"] >= 1 and got["metadata"]["currency"] == "USD"
    assert got["records"] == 2 * len(expected_keys(items, "x")) and got["n_invalid"] == 0, got["invalid"]
    assert got["duplicate_keys"] == 0 and got["days"] == ["2026-11-27", "2026-11-28"]
