"""The pipeline end to end under each injected fault, then CloudForet compared
with the fleet exactly: every resource once, right fields, deleted ones gone,
the day's costs exactly once."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.faults import CloudForetFaults
from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.faults import PrismFaults
from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import CLOUDFORET_USER_PASSWORD, PRISM_PASSWORD, assert_matches_fleet, expected, write_config

SPEC = FleetSpec(seed=21, prism_centrals=1, clusters=2, hosts_per_cluster=1, vms=36, disks_per_vm=1)
DAY = "2026-11-28"
USER = {"user_id": "collector@example.com", "password": CLOUDFORET_USER_PASSWORD, "role_type": "DOMAIN_ADMIN"}

PRISM_FAULTS = {
    "429 with Retry-After": "429:0.25@retry_after=0.2",
    "500": "500:0.3",
    "502": "502:0.3",
    "503": "503:0.3@retry_after=0.1",
    "504": "504:0.3",
    "slower than the client timeout": "slow@calls=3+6@delay=2.5",
    "connection reset mid-body": "reset:0.25",
    "truncated JSON": "truncated:0.25",
}
CLOUDFORET_FAULTS = {
    "UNAVAILABLE": "UNAVAILABLE:0.15",
    "DEADLINE_EXCEEDED": "DEADLINE_EXCEEDED:0.15",
    "DEADLINE_EXCEEDED after the write": "DEADLINE_EXCEEDED_AFTER:0.2@method=CloudService.*|Cost.create",
    "RESOURCE_EXHAUSTED": "RESOURCE_EXHAUSTED:0.15",
    "token expired mid-run": "UNAUTHENTICATED@after=40",
    "server restart mid-run": "RESTART@after=60@down=0.5",
}


@pytest.fixture
def env(tmp_path, prism_servers, monkeypatch):
    server, = prism_servers(SPEC)
    server.faults = PrismFaults()
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig(users=[USER]),
                             faults=CloudForetFaults()).start()
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)
    monkeypatch.setenv("TEST_CF_PASSWORD", CLOUDFORET_USER_PASSWORD)
    config = write_config(tmp_path, [server], emu, batch_size=10, max_attempts=8, touch_after_s=0,
                          auth={"user_id": USER["user_id"], "password_env": "TEST_CF_PASSWORD"})
    # a 1 s Prism timeout, so that the 'slow' fault is slower than the client
    raw = json.loads(json.dumps(__import__("yaml").safe_load(open(config))))
    raw["prism"].update(timeout_s=1, max_attempts=8, page_size=8)
    open(config, "w").write(__import__("yaml").safe_dump(raw))
    yield server, emu, config, tmp_path
    emu.faults.join()
    emu.stop()


def report(tmp_path) -> dict:
    return json.loads((tmp_path / "report.json").read_text())


def clean_run_then_delete_a_vm(server, config) -> Counter:
    """The faulty run that follows must delete the VM (and its disk) from CloudForet.
    Returns the day's cost keys as the clean run saw the fleet."""
    assert run(["--config", config, "--collected-at", f"{DAY}T05:00:00Z", "--run-id", "clean"]) == 0
    costs = expected(server)[1]
    server.pc.delete_vms([5])
    return costs


@pytest.mark.parametrize("spec", PRISM_FAULTS.values(), ids=PRISM_FAULTS.keys())
def test_prism_faults(env, spec):
    server, emu, config, tmp_path = env
    earlier = clean_run_then_delete_a_vm(server, config)
    server.faults.set(spec, seed=3)
    assert run(["--config", config, "--collected-at", f"{DAY}T06:00:00Z", "--run-id", "faulty"]) == 0
    assert sum(server.faults.injected.values()) > 0  # the fault really happened
    acc = report(tmp_path)["accounts"][server.pc.name]
    assert acc["status"] == "SUCCESS" and acc["complete"], acc
    assert acc["reconcile"]["deleted"] == 2  # the deleted VM and its disk
    assert_matches_fleet(emu, server, earlier)


@pytest.mark.parametrize("spec", CLOUDFORET_FAULTS.values(), ids=CLOUDFORET_FAULTS.keys())
def test_cloudforet_faults(env, spec):
    server, emu, config, tmp_path = env
    # first run under the fault creates everything, the second updates and deletes under it
    earlier: Counter = Counter()
    for run_id, hour in (("create", "05"), ("update", "06")):
        emu.faults.set(spec, seed=5)
        assert run(["--config", config, "--collected-at", f"{DAY}T{hour}:00:00Z", "--run-id", run_id]) == 0
        emu.faults.join()
        assert sum(emu.faults.injected.values()) > 0  # the fault really happened
        acc = report(tmp_path)["accounts"][server.pc.name]
        assert acc["status"] == "SUCCESS", acc
        assert_matches_fleet(emu, server, earlier)
        if run_id == "create":
            earlier = expected(server)[1]
            server.pc.delete_vms([5])


def test_malformed_entity_is_a_dead_letter_and_the_rest_completes(env):
    server, emu, config, tmp_path = env
    earlier = clean_run_then_delete_a_vm(server, config)
    server.faults.set("malformed@calls=3@shape=no_uuid@path=/vms/list", seed=1)
    assert run(["--config", config, "--collected-at", f"{DAY}T06:00:00Z", "--run-id", "faulty"]) == 0
    acc = report(tmp_path)["accounts"][server.pc.name]
    assert acc["status"] == "WARNING" and acc["dead_letters"] == 1
    assert "without metadata.uuid" in acc["errors"][0]
    # an entity read without a uuid: "not seen" is not "gone", so nothing was deleted
    assert any("reconciliation skipped" in n for n in acc.get("notes", []))
    server.faults.clear()
    assert run(["--config", config, "--collected-at", f"{DAY}T07:00:00Z", "--run-id", "after"]) == 0
    assert_matches_fleet(emu, server, earlier)


def test_vms_added_and_removed_between_pages_converge(env):
    server, emu, config, tmp_path = env
    earlier = clean_run_then_delete_a_vm(server, config)
    server.faults.set("churn@calls=2@delete=2@add=3", seed=2)
    assert run(["--config", config, "--collected-at", f"{DAY}T06:00:00Z", "--run-id", "churn"]) == 0
    refs = Counter(c["reference"]["resource_id"] for c in emu.store.cloud_services())
    assert max(refs.values()) == 1  # offset paging may skip or repeat: never a duplicate
    server.faults.clear()
    assert run(["--config", config, "--collected-at", f"{DAY}T07:00:00Z", "--run-id", "next"]) == 0
    assert_matches_fleet(emu, server, earlier)


def test_401_mid_run_leaves_the_account_incomplete_then_recovers(env):
    server, emu, config, tmp_path = env
    earlier = clean_run_then_delete_a_vm(server, config)
    server.faults.set("401@after=4", seed=1)
    assert run(["--config", config, "--collected-at", f"{DAY}T06:00:00Z", "--run-id", "faulty"]) == 0
    acc = report(tmp_path)["accounts"][server.pc.name]
    assert acc["status"] == "WARNING" and not acc["complete"]
    assert any("credentials rejected" in e for e in acc["errors"])
    assert any("reconciliation skipped" in n for n in acc.get("notes", []))
    server.faults.clear()
    assert run(["--config", config, "--collected-at", f"{DAY}T07:00:00Z", "--run-id", "after"]) == 0
    assert_matches_fleet(emu, server, earlier)


def test_one_record_rejected_and_permission_denied_are_dead_letters(env):
    server, emu, config, tmp_path = env
    victim = server.pc.vm_uuid(7)
    emu.faults.set(f"INVALID_ARGUMENT@method=CloudService.update|CloudService.create@match=resource_id: \"{victim}\","
                   "PERMISSION_DENIED@method=Cost.create@calls=1", seed=1)
    assert run(["--config", config, "--collected-at", f"{DAY}T06:00:00Z", "--run-id", "faulty",
                "--log-level", "WARNING"]) == 0
    acc = report(tmp_path)["accounts"][server.pc.name]
    assert acc["status"] == "WARNING" and acc["inventory"]["failed"] == 1 and acc["cost"]["failed"] == 1
    errors = "\n".join(acc["errors"])
    assert victim in errors and "INVALID_ARGUMENT" in errors
    assert "PERMISSION_DENIED" in errors and "WORKSPACE_OWNER" in errors  # names the role needed
    emu.faults.clear()
    assert run(["--config", config, "--collected-at", f"{DAY}T07:00:00Z", "--run-id", "after"]) == 0
    assert_matches_fleet(emu, server)
