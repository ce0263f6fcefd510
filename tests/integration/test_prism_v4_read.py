"""One fleet read through v3 and through v4 writes the same: cloud services, costs and
metric points compared field by field (issue 20). The only differences allowed are the
fields v4 does not carry (transforms/sources/v4_shapes.py), named here one by one."""
from __future__ import annotations

import json

import pyarrow.dataset as ds
import pytest

from emulators.prism.faults import PrismFaults
from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import (  # noqa: F401  (fixtures)
    CLOUDFORET_USER_PASSWORD,
    COLLECTED_AT,
    _env,
    account_entry,
    state,
    write_config,
)

SPEC = FleetSpec(seed=23, prism_centrals=2, clusters=2, hosts_per_cluster=2, vms=130, disks_per_vm=2,
                 power_on_ratio=0.7)
# what v4.0 gives as ids only, with no list in the collector's reach to name them, or not at all
V4_GAPS = {("vm", "data.owner.name"), ("vm", "data.project"), ("cluster", "data.created_at")}
# the hash of each resource's content, so it differs exactly where a gap does
DERIVED = {("vm", "data.collector_fingerprint"), ("cluster", "data.collector_fingerprint")}


@pytest.fixture
def two_cloudforets(tmp_path):
    """Two CloudForet emulators whose user is a DOMAIN_ADMIN (as tests/conftest.py ``cloudforet``)."""
    from emulators.cloudforet.config import EmulatorConfig
    from emulators.cloudforet.server import CloudForetEmulator
    users = [{"user_id": "collector@example.com", "password": CLOUDFORET_USER_PASSWORD, "role_type": "DOMAIN_ADMIN"}]
    emus = [CloudForetEmulator(str(tmp_path / f"cf-{k}.sqlite"), EmulatorConfig(users=users)).start() for k in "ab"]
    yield emus
    for e in emus:
        e.stop()


def _flat(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: value}


def _kind(service: dict) -> str:
    return {"Instance": "vm", "Disk": "disk", "Cluster": "cluster", "Host": "host"}[service["cloud_service_type"]]


def _points(path) -> list[tuple]:
    table = ds.dataset(str(path), format="parquet", partitioning="hive").to_table()
    cols = [c for c in table.column_names if c not in ("run_id",)]
    return sorted(zip(*(table.column(c).to_pylist() for c in cols)))


def _read(tmp_path, servers, emu, api, name):
    config = write_config(tmp_path, servers, emu, name=f"{name}.yaml", metrics=f"metrics-{name}")
    raw = json.loads(json.dumps(__import__("yaml").safe_load(open(config))))
    raw["prism"]["api"] = api
    raw["report"]["path"] = str(tmp_path / f"report-{name}.json")
    raw["snapshot"]["path"] = str(tmp_path / f"snapshots-{name}")
    open(config, "w").write(__import__("yaml").safe_dump(raw))
    assert run(["--config", config, "--collected-at", COLLECTED_AT, "--run-id", f"run-{name}"]) == 0
    return json.loads((tmp_path / f"report-{name}.json").read_text())


def test_v3_and_v4_write_the_same_services_costs_and_metric_points(tmp_path, prism_servers, two_cloudforets):
    servers = prism_servers(SPEC)
    via_v3, via_v4 = two_cloudforets
    report3 = _read(tmp_path, servers, via_v3, "v3", "v3")
    requests_v3 = sum(sum(s.requests.values()) for s in servers)
    report4 = _read(tmp_path, servers, via_v4, "auto", "v4")
    assert {a["api"] for a in report3["accounts"].values()} == {"v3"}
    assert {a["api"] for a in report4["accounts"].values()} == {"v4.0"}
    assert all(s.requests["/api/vmm/v4.0/ahv/config/vms"] > 0 for s in servers)
    assert sum(sum(s.requests.values()) for s in servers) > requests_v3  # the v4 run did read

    s3, s4 = state(via_v3), state(via_v4)
    assert len(s3["services"]) == len(s4["services"]) == 130 * 3 + 2 * (2 + 4)
    gaps = set()
    for a, b in zip(s3["services"], s4["services"]):
        assert a["reference"] == b["reference"]
        fa, fb = _flat(a), _flat(b)
        assert set(fa) == set(fb), a["reference"]
        for key in fa:
            if fa[key] != fb[key]:
                gaps.add((_kind(a), key))
    assert gaps == V4_GAPS | DERIVED  # nothing else differs, and each gap shows (the test sees them)
    assert s3["costs"] == s4["costs"]  # every cost record, field by field
    assert len(s3["costs"]) > 0
    p3, p4 = _points(tmp_path / "metrics-v3"), _points(tmp_path / "metrics-v4")
    assert p3 == p4 and len(p3) == sum(1 for s in servers for i in s.pc.iter_live_indices()
                                       if s.pc.vm_running(i)) * 8 * 12


def test_auto_falls_back_to_v3_on_a_prism_central_without_v4(tmp_path, prism_servers, cloudforet):
    servers = prism_servers(FleetSpec(seed=3, vms=12), apis=("v3",))
    report = _read(tmp_path, servers, cloudforet, "auto", "fallback")
    acc = report["accounts"][servers[0].pc.name]
    assert acc["api"] == "v3" and "404" in acc["api_reason"]
    assert acc["read"]["vms"] == 12 and acc["status"] == "SUCCESS"
    assert servers[0].requests["/api/vmm/unversioned/info"] == 1  # asked once per run


def test_v4_survives_both_throttling_forms_and_reads_everything(tmp_path, prism_servers, cloudforet):
    faults = PrismFaults("ratelimit@calls=3,429@calls=5@retry_after=0,ratelimit@path=stats@calls=1", seed=1)
    servers = prism_servers(FleetSpec(seed=4, vms=40), faults=faults)
    report = _read(tmp_path, servers, cloudforet, "v4", "throttled")
    acc = report["accounts"][servers[0].pc.name]
    assert acc["api"] == "v4.0" and acc["status"] == "SUCCESS", acc
    assert acc["read"]["vms"] == 40 and acc["read"]["vm_stats"] == 40
    assert faults.injected["ratelimit"] == 2 and faults.injected["429"] == 1


def test_v4_with_an_api_key_alone(tmp_path, prism_servers, cloudforet, monkeypatch):
    monkeypatch.setenv("TEST_PRISM_KEY", "k3y-for-v4")
    servers = prism_servers(FleetSpec(seed=5, vms=9), api_key="k3y-for-v4")
    entry = account_entry(servers[0])
    for key in ("username", "password_env"):
        del entry[key]
    entry.update(api_key_env="TEST_PRISM_KEY", api="v4")
    config = write_config(tmp_path, servers, cloudforet, accounts=[entry])
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["accounts"][servers[0].pc.name]["read"]["vms"] == 9
    assert "k3y-for-v4" not in (tmp_path / "report.json").read_text()


def test_an_api_key_alone_cannot_read_v3(tmp_path, prism_servers, cloudforet):
    api = "v3"
    from pipeline.config import ConfigError, load_config
    servers = prism_servers(FleetSpec(seed=5, vms=1))
    entry = {**account_entry(servers[0]), "api": api, "api_key_env": "TEST_PRISM_KEY"}
    del entry["password_env"]
    config = write_config(tmp_path, servers, cloudforet, accounts=[entry])
    with pytest.raises(ConfigError, match="an API key opens v4 only"):
        load_config(config)


def test_an_api_key_alone_on_a_v3_only_prism_central_fails_the_account_saying_why(tmp_path, prism_servers,
                                                                                 cloudforet, monkeypatch):
    monkeypatch.setenv("TEST_PRISM_KEY", "k3y-for-v4")
    servers = prism_servers(FleetSpec(seed=5, vms=3), apis=("v3",), api_key="k3y-for-v4")
    entry = {**account_entry(servers[0]), "api": "auto", "api_key_env": "TEST_PRISM_KEY"}
    for key in ("username", "password_env"):
        del entry[key]
    config = write_config(tmp_path, servers, cloudforet, accounts=[entry])
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) != 0
    acc = json.loads((tmp_path / "report.json").read_text())["accounts"][servers[0].pc.name]
    assert "not an API key" in acc["error"] and "404" in acc["error"]
    assert servers[0].requests["/api/nutanix/v3/vms/list"] == 0  # no v3 call made with nothing to log in with
