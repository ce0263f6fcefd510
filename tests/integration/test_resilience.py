"""Runner retries of whole bundles, and runs killed with SIGKILL, end in the right state."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import DAY, PRISM_PASSWORD, ROOT, assert_matches_fleet, expected, state, write_config
from transforms.sinks import cost_analysis as cost_sink
from transforms.sinks import inventory as inventory_sink

SPEC = FleetSpec(seed=31, prism_centrals=1, clusters=2, hosts_per_cluster=1, vms=30, disks_per_vm=1)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)
    monkeypatch.setenv("TEST_CF_PASSWORD", "collector-pass")  # the emulator's default DOMAIN_ADMIN user (api mode)



_failed_once: set = set()


def fail_once_per_bundle(cls, monkeypatch):
    """Each bundle writes its first batch for real, then fails, the first time only."""
    original_start, original_write = cls.start_bundle, cls.start_write

    def start_bundle(self):
        original_start(self)
        self.first_batch_of_bundle = True

    def start_write(self, group, batch):
        finish = original_write(self, group, batch)
        first, self.first_batch_of_bundle = self.first_batch_of_bundle, False

        def finish_then_fail():
            outputs = list(finish())  # the batch is written and answered
            key = (cls.__name__, tuple(sorted(str(r.get("resource_id", r.get("resource"))) for r in batch)))
            if first and key not in _failed_once:
                _failed_once.add(key)
                raise RuntimeError("injected: the bundle fails after its writes were applied")
            return iter(outputs)
        return finish_then_fail

    monkeypatch.setattr(cls, "start_bundle", start_bundle)
    monkeypatch.setattr(cls, "start_write", start_write)


def test_runner_retrying_whole_bundles_leaves_the_same_state(tmp_path, prism_servers, cloudforets, monkeypatch):
    server, = prism_servers(SPEC)
    reference, retried = cloudforets("reference"), cloudforets("retried")
    monkeypatch.setenv("TEST_CF_TOKEN", reference.app_token())
    config = write_config(tmp_path, [server], reference, batch_size=7, name="reference.yaml", metrics="m-ref")
    assert run(["--config", config, "--collected-at", f"{DAY}T06:00:00Z", "--run-id", "r"]) == 0

    # BundleBasedDirectRunner retries a failed bundle; every sink bundle fails once after writing
    fail_once_per_bundle(inventory_sink._WriteInventoryFn, monkeypatch)
    fail_once_per_bundle(cost_sink._WriteCostFn, monkeypatch)
    monkeypatch.setenv("TEST_CF_TOKEN", retried.app_token())
    config = write_config(tmp_path, [server], retried, batch_size=7, name="retried.yaml", metrics="m-retried")
    assert run(["--config", config, "--collected-at", f"{DAY}T06:00:00Z", "--run-id", "r",
                "--runner", "BundleBasedDirectRunner"]) == 0
    assert _failed_once, "no bundle was failed: the test did not test anything"
    assert state(retried) == state(reference)
    assert_matches_fleet(retried, server)


def test_runs_killed_at_any_point_then_rerun_end_right(tmp_path, prism_servers, monkeypatch):
    server, = prism_servers(SPEC)
    # 20 ms a call spreads the writes over a second or two, so the kills land mid-write on any machine
    emu = CloudForetEmulator(str(tmp_path / "killed.sqlite"), EmulatorConfig(latency_ms=20)).start()
    try:
        _killed_then_rerun(tmp_path, server, emu)
    finally:
        emu.stop()


def _killed_then_rerun(tmp_path, server, emu):
    config = write_config(tmp_path, [server], emu, batch_size=5, touch_after_s=0)
    env = dict(os.environ, TEST_CF_TOKEN=emu.app_token(), TEST_PRISM_PASSWORD=PRISM_PASSWORD,
               TEST_CF_PASSWORD="collector-pass")
    args = [sys.executable, "-m", "pipeline", "--config", config, "--collected-at", f"{DAY}T06:00:00Z",
            "--log-level", "WARNING"]
    killed_at = []
    # each run is killed at a point of its writes CloudForet sees: its first write, in the inventory
    # writes, as the cost writes begin, in the cost writes
    calls = emu.backend.calls
    kill_points = [
        ("the first write", lambda changes, costs: changes > 0),
        ("in the inventory writes", lambda changes, costs: changes >= 12),
        ("as the cost writes begin", lambda changes, costs: costs > 0),
        ("in the cost writes", lambda changes, costs: costs >= 6),
    ]
    for i, (point, reached) in enumerate(kill_points):
        before, costs_before = emu.store.changes, calls["Cost.create"]
        proc = subprocess.Popen(args + ["--run-id", f"killed-{i}"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120  # a bounded wait for the kill point, not a measurement
        while (not reached(emu.store.changes - before, calls["Cost.create"] - costs_before)
               and proc.poll() is None and time.monotonic() < deadline):
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_at.append(point)
        proc.wait(60)
        if i == 1:
            server.pc.delete_vms([3])  # Prism changes between the killed runs, too
    assert killed_at, "every run finished before it could be killed"
    assert len(emu.store.cloud_services()) > 0  # the killed runs got somewhere

    proc = subprocess.run(args + ["--run-id", "complete"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # a killed run may have written the day's costs of the VM deleted since: at most once
    server.pc.deleted.discard(3)
    earlier = expected(server)[1]
    server.pc.delete_vms([3])
    assert_matches_fleet(emu, server, maybe_costs=earlier)
