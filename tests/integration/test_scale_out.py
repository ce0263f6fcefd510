"""Scale-out: the pipeline is portable to runners whose SDK workers are separate processes.

``--direct_num_workers 2 --direct_running_mode multi_processing`` makes the
local FnApiRunner start its SDK workers as subprocesses talking the Fn API, as
Flink and Dataflow workers do: every DoFn is pickled, nothing is shared in
memory, clients are opened in ``setup()``. The same fleet, collected once
in-process and once that way, must give the same CloudForet state, costs and
metric store.

The installed-wheel check (the package as Dataflow's ``--setup_file`` would
install it, run from outside the source tree) is a CI step, ``.ci/run wheel``:
at 65-110 s on this machine it is too slow for the test suite.
"""
from __future__ import annotations

import json
import logging

import pyarrow.dataset as ds

from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import PRISM_PASSWORD, state, write_config

SPEC = FleetSpec(seed=23, prism_centrals=2, clusters=2, hosts_per_cluster=1, vms=24, disks_per_vm=2,
                 power_on_ratio=0.6)
COLLECTED_AT = "2026-11-28T06:00:00Z"
RUN_ID = "scale-out"
MULTI = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]


def table_rows(path) -> list[dict]:
    table = ds.dataset(str(path), format="parquet", partitioning="hive").to_table()
    return sorted(table.to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def collect(tmp_path, monkeypatch, servers, emu, name: str, extra: list[str]) -> dict:
    """One live run into ``emu``; its outputs go under tmp_path/name."""
    out = tmp_path / name
    out.mkdir()
    # environment variables are inherited by the SDK worker subprocesses
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)
    monkeypatch.setenv("TEST_CF_TOKEN", emu.app_token())
    monkeypatch.setenv("TEST_CF_PASSWORD", "collector-pass")  # the emulator's default DOMAIN_ADMIN user
    config = write_config(out, servers, emu, cost_mode="both")
    assert run(["--config", config, "--collected-at", COLLECTED_AT, "--run-id", RUN_ID, *extra]) == 0
    report = json.loads((out / "report.json").read_text())
    report.pop("counters", None)
    return {"cloudforet": state(emu), "metrics": table_rows(out / "metrics"), "cost_store": table_rows(out / "costs"),
            "notifications": sorted(json.dumps(n["message"], sort_keys=True) for n in emu.store.notifications()),
            "report": report}


def types_created(report: dict) -> int:
    """The accounts' sum, each account's figure then zeroed."""
    total = 0
    for account in report["accounts"].values():
        total += account["registry"]["types_created"]
        account["registry"]["types_created"] = 0
    return total


def harness_starts(caplog) -> int:
    """SDK worker subprocesses log through the runner's job service."""
    return sum(1 for r in caplog.records if "sdk harness starting" in r.getMessage())


def test_multi_processing_gives_identical_results(tmp_path, prism_servers, cloudforets, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    servers = prism_servers(SPEC)
    single = collect(tmp_path, monkeypatch, servers, cloudforets("in-memory"), "in-memory", [])
    assert harness_starts(caplog) == 0
    multi = collect(tmp_path, monkeypatch, servers, cloudforets("multi"), "multi", MULTI)
    assert harness_starts(caplog) == 2  # really two SDK worker processes

    assert len(single["cloudforet"]["services"]) == 24 + 48 + 4 + 4  # VMs, disks, clusters, hosts
    assert single["cloudforet"]["costs"] and single["metrics"] and single["cost_store"]
    assert single["report"]["status"] == "SUCCESS"
    assert multi["cloudforet"]["services"] == single["cloudforet"]["services"]  # field by field
    assert multi["cloudforet"]["costs"] == single["cloudforet"]["costs"]
    assert multi["metrics"] == single["metrics"]
    assert multi["cost_store"] == single["cost_store"]
    assert multi["notifications"] == single["notifications"]
    # The CloudServiceTypes are shared: the report credits their creation to whichever account's
    # registry step ran first, which parallel workers may order differently.
    assert types_created(multi["report"]) == types_created(single["report"]) == 4
    assert multi["report"] == single["report"]

