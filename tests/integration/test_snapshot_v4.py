"""Snapshots of v4 reads: the manifest says which API each account was read with; a v4
snapshot replays to the live state; snapshots older than v4 replay as read through v3."""
from __future__ import annotations

import json
import shutil

import yaml

from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import state, write_config
from tests.integration.test_snapshot import V1_SAMPLE, _env, metric_rows, only_snapshot  # noqa: F401

SPEC = FleetSpec(seed=8, prism_centrals=2, clusters=2, hosts_per_cluster=1, vms=30, disks_per_vm=1)


def _run(emu, tmp_path, monkeypatch, servers, *args, api="auto", metrics="metrics"):
    monkeypatch.setenv("TEST_CF_TOKEN", emu.app_token())
    monkeypatch.setenv("TEST_CF_PASSWORD", "collector-pass")
    config = write_config(tmp_path, servers, emu, metrics=metrics)
    raw = yaml.safe_load(open(config))
    raw["prism"]["api"] = api
    open(config, "w").write(yaml.safe_dump(raw))
    return run(["--config", config, *args])


def test_a_v4_snapshot_records_the_api_and_replays_to_the_live_state(tmp_path, prism_servers, cloudforets,
                                                                    monkeypatch):
    servers = prism_servers(SPEC)
    servers[1].apis = ("v3",)  # the second Prism Central is older: v3 only
    servers[1].v4 = None
    live, replayed = cloudforets("live"), cloudforets("replayed")
    assert _run(live, tmp_path, monkeypatch, servers, "--collected-at", "2026-11-20T06:00:00Z",
                metrics="metrics-live") == 0
    snap = only_snapshot(tmp_path)
    manifest = json.loads((snap / "manifest.json").read_text())
    apis = {name: a["api"] for name, a in manifest["accounts"].items()}
    assert apis == {servers[0].pc.name: "v4.0", servers[1].pc.name: "v3"}
    assert "v4.0" in manifest["accounts"][servers[0].pc.name]["api_reason"]
    assert manifest["counts"] == {"cluster": 6, "host": 4, "vm": 30, "vm_stats": 30}

    for s in servers:
        s.stop()
    assert _run(replayed, tmp_path, monkeypatch, servers, "--source", "snapshot", "--snapshot", str(snap),
                metrics="metrics-replay") == 0
    assert state(replayed) == state(live)  # field by field
    assert metric_rows(tmp_path / "metrics-replay") == metric_rows(tmp_path / "metrics-live")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["accounts"][servers[0].pc.name]["api"] == "v4.0"
    assert report["accounts"][servers[0].pc.name]["api_reason"].startswith("replayed")


def test_an_old_snapshot_replays_as_read_through_v3(tmp_path, cloudforets, monkeypatch):
    emu = cloudforets("v1")
    snap = tmp_path / "v1"
    shutil.copytree(V1_SAMPLE, snap)
    manifest = json.loads((snap / "manifest.json").read_text())
    assert all("api" not in a for a in manifest["accounts"].values())  # older than this change
    assert _run(emu, tmp_path, monkeypatch, [], "--source", "snapshot", "--snapshot", str(snap)) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert {a["api"] for a in report["accounts"].values()} == {"v3"}
    assert len([c for c in emu.store.cloud_services() if c["cloud_service_type"] == "Instance"]) == \
        manifest["counts"]["vm"]
