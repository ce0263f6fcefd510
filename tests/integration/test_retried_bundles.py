"""Every bundle run twice leaves what one run leaves: no duplicate, nothing lost, no
second notification.

A runner retries a failed bundle whole (Flink restarts the failed region when an SDK
worker dies mid-run), so whatever the bundle already did (cloud services, cost
records, files staged, notifications sent) is done again, and a bundle that
finished may be run again in the same SDK worker with its first outputs thrown
away. The portable deployment's job service (tests/job_service.py) runs here with
``bundle_repeat=1``: every bundle once more, outputs thrown away, side effects kept,
in SDK workers started by an EXTERNAL worker pool, as a retry after every bundle.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import PRISM_PASSWORD, state, write_config
from tests.integration.test_portable import snapshot_records
from tests.integration.test_scale_out import table_rows
from tests.portable import start_portable

SPEC = FleetSpec(seed=43, prism_centrals=2, clusters=2, hosts_per_cluster=1, vms=30, disks_per_vm=1)
CF_PASSWORD = "collector-pass"  # the emulator's default DOMAIN_ADMIN user (emulators/cloudforet/config.py)


@pytest.fixture(scope="module")
def retrying(tmp_path_factory):
    deployment = start_portable(tmp_path_factory.mktemp("retrying"),
                                {"TEST_PRISM_PASSWORD": PRISM_PASSWORD, "TEST_CF_PASSWORD": CF_PASSWORD},
                                bundle_repeat=1)
    yield deployment
    deployment.stop()


def collect(tmp_path, servers, emu, name: str, extra: list[str]) -> dict:
    out = tmp_path / name
    out.mkdir()
    config = write_config(out, servers, emu, cost_mode="both", snapshot={"format": "avro"})
    assert run(["--config", config, "--collected-at", "2026-11-28T06:00:00Z", "--run-id", "retried", *extra]) == 0
    report = json.loads((out / "report.json").read_text())
    return {"cloudforet": state(emu), "metrics": table_rows(out / "metrics"), "cost_store": table_rows(out / "costs"),
            "snapshot": snapshot_records(out / "snapshots"), "report": report,
            "notifications": Counter(n["message"]["account"] for n in emu.store.notifications())}


def test_bundles_run_twice_leave_no_duplicates_lose_nothing_and_notify_once(tmp_path, prism_servers, cloudforets,
                                                                            retrying, monkeypatch):
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)
    monkeypatch.setenv("TEST_CF_PASSWORD", CF_PASSWORD)
    servers = prism_servers(SPEC)
    once = collect(tmp_path, servers, cloudforets("once"), "once", [])
    twice = collect(tmp_path, servers, cloudforets("twice"), "twice", retrying.options)
    assert len(once["cloudforet"]["services"]) == 30 + 30 + 4 + 4 and once["cloudforet"]["costs"]
    assert once["metrics"] and once["cost_store"]
    for key in ("cloudforet", "metrics", "cost_store", "snapshot"):
        assert twice[key] == once[key], key
    names = {s.pc.name for s in servers}
    assert once["notifications"] == twice["notifications"] == Counter(dict.fromkeys(names, 1))
    # the repeated Notify found its own notifications recorded as sent, and sent none again
    assert set(twice["report"]["notifications"].values()) == {"already sent"}
    # what the kept bundle found done by the repeated one counts as there already (not created twice)
    for report in (once["report"], twice["report"]):
        report.pop("notifications")
        report.pop("counters")
        for a in report["accounts"].values():
            a.pop("registry", None)  # types and regions: created once, by whichever bundle ran first
            inv, cost = a["inventory"], a["cost"]
            inv["written"] = inv.pop("created") + inv.pop("updated") + inv.pop("unchanged")
            cost["written"] = cost.pop("created") + cost.pop("already_present")
    assert twice["report"] == once["report"]
