"""The same fleet on a portable deployment and on the FnApiRunner: identical results.

The portable deployment (tests/portable.py) is production's shape: the launcher
submits the job to a job service, and the SDK workers are separate processes
started by an EXTERNAL worker pool, with the pool's environment (the Prism
passwords are in no other process's). Two workers share each Prism Central's
request budget (``prism.rate_limit_shares: 2``). One account has a wrong
password: it fails alone, on both runners.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import fastavro
import pytest
import yaml

from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import account_entry, state, write_config
from tests.integration.test_scale_out import table_rows
from tests.portable import start_portable

SPEC = FleetSpec(seed=41, prism_centrals=2, clusters=2, hosts_per_cluster=1, vms=120, disks_per_vm=1,
                 power_on_ratio=0.6)
PRISM_PASSWORD_ENV = {"PORTABLE_PRISM_PASSWORD": "s3cret-prism-Pa55!", "PORTABLE_BAD_PASSWORD": "not-it"}
CF_PASSWORD = "collector-pass"  # the emulator's default DOMAIN_ADMIN user (emulators/cloudforet/config.py)
WORKER_ENV = {**PRISM_PASSWORD_ENV, "TEST_CF_PASSWORD": CF_PASSWORD}
RATE = 10  # requests per second per Prism Central, for the whole job
WORKERS = 2


@pytest.fixture(scope="module")
def portable(tmp_path_factory):
    deployment = start_portable(tmp_path_factory.mktemp("portable"), WORKER_ENV, WORKERS)
    yield deployment
    deployment.stop()


class RequestLog:
    """When each Prism Central answered each request (the emulator's own dispatch, wrapped)."""

    def __init__(self, servers):
        self.times: dict[str, list[float]] = {s.pc.name: [] for s in servers}
        self.lock = threading.Lock()
        for s in servers:
            self._wrap(s)

    def _wrap(self, server) -> None:
        inner = server._dispatch

        def logged(method, raw_path, headers, body):
            with self.lock:
                self.times[server.pc.name].append(time.monotonic())
            return inner(method, raw_path, headers, body)
        server._dispatch = logged

    def clear(self) -> None:
        with self.lock:
            for t in self.times.values():
                t.clear()

    def worst_second(self, name: str) -> int:
        """The most requests any one-second window saw."""
        t = sorted(self.times[name])
        return max((sum(1 for u in t if s <= u < s + 1.0) for s in t), default=0)


def snapshot_records(root: Path) -> tuple[list, dict]:
    (snap,) = [p for p in root.iterdir() if p.is_dir()]
    records = []
    for f in sorted(snap.glob("*.avro")):
        with open(f, "rb") as fh:
            records += [json.dumps(r, sort_keys=True, default=str) for r in fastavro.reader(fh)]
    manifest = json.loads((snap / "manifest.json").read_text())
    return sorted(records), {a: (v["complete"], v["counts"]) for a, v in manifest["accounts"].items()}


def collect(tmp_path, servers, emu, name: str, extra: list[str]) -> dict:
    out = tmp_path / name
    out.mkdir()
    accounts = [account_entry(s, password_env="PORTABLE_PRISM_PASSWORD") for s in servers]
    accounts.append(account_entry(servers[0], name="pc-wrong-password", password_env="PORTABLE_BAD_PASSWORD"))
    path = write_config(out, servers, emu, accounts=accounts, cost_mode="both")
    config = yaml.safe_load(Path(path).read_text())
    config["prism"].update(page_size=5, max_requests_per_s=RATE, rate_limit_shares=WORKERS)
    config["snapshot"]["format"] = "avro"
    Path(path).write_text(yaml.safe_dump(config))
    code = run(["--config", path, "--collected-at", "2026-11-28T06:00:00Z", "--run-id", "portable", *extra])
    assert code == 1  # the account with the wrong password failed, alone
    report = json.loads((out / "report.json").read_text())
    counters = report.pop("counters")
    records, manifest = snapshot_records(out / "snapshots")
    return {"cloudforet": state(emu), "metrics": table_rows(out / "metrics"), "cost_store": table_rows(out / "costs"),
            "notifications": sorted(json.dumps(n["message"], sort_keys=True) for n in emu.store.notifications()),
            "snapshot": records, "manifest": manifest, "report": report, "counters": counters}


def test_portable_runner_with_external_workers_gives_identical_results(tmp_path, prism_servers, cloudforets,
                                                                       portable, monkeypatch):
    monkeypatch.setenv("TEST_CF_PASSWORD", CF_PASSWORD)  # the launcher's own login (preflight)
    servers = prism_servers(SPEC)
    log = RequestLog(servers)
    for name, value in PRISM_PASSWORD_ENV.items():  # the FnApiRunner's workers are the launcher's threads
        monkeypatch.setenv(name, value)
    local = collect(tmp_path, servers, cloudforets("fn-api"), "fn-api", [])
    for name in PRISM_PASSWORD_ENV:  # on the portable runner the Prism passwords are the workers' alone
        monkeypatch.delenv(name)
    log.clear()
    before = portable.workers_started()
    remote = collect(tmp_path, servers, cloudforets("portable"), "portable", portable.options)
    assert portable.workers_started() - before == WORKERS  # the run's bundles ran in two worker processes

    accounts = local["report"]["accounts"]
    good = [s.pc.name for s in servers]
    assert {a: accounts[a]["status"] for a in accounts} == {**dict.fromkeys(good, "SUCCESS"),
                                                           "pc-wrong-password": "ERROR"}
    assert sum(accounts[a]["read"]["vms"] for a in good) == 120
    assert len(local["cloudforet"]["services"]) == 120 + 120 + 4 + 4  # VMs, disks, clusters, hosts
    assert local["metrics"] and local["cost_store"] and local["cloudforet"]["costs"] and local["snapshot"]
    for key in ("cloudforet", "metrics", "cost_store", "notifications", "snapshot", "manifest"):
        assert remote[key] == local[key], key
    for report in (local["report"], remote["report"]):  # created by whichever account's step ran first
        assert sum(a.get("registry", {}).pop("types_created", 0) for a in report["accounts"].values()) == 4
    assert remote["report"] == local["report"]

    # counters reach the report from the portable runner too (attempted values: all it gives)
    assert remote["counters"]["prism.pages_planned"] == local["counters"]["prism.pages_planned"] > 0
    for key in ("inventory.created", "cost.created", "metrics.points_extracted", "prism.entities_read"):
        assert remote["counters"][key] == local["counters"][key] > 0, key

    # two workers in two processes kept each Prism Central's budget (each limiter: RATE / 2, a burst of 1)
    for name in good:
        assert len(log.times[name]) > 2 * RATE  # long enough to have filled many one-second windows
        assert log.worst_second(name) <= RATE + WORKERS, name
