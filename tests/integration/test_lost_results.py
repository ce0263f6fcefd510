"""Never a silent empty success: a runner that loses work fails the run.

Beam's DaskRunner ran this pipeline and said SUCCESS with 0 VMs read and nothing
written (shared/docs/beam.md, "Runners"). tests/runners.py has two runners that
lose work the same ways: one drops every ``finish_bundle`` output (as Dask does),
one never runs the graph (so no summary step writes the run report).
"""
from __future__ import annotations

import json

from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import COLLECTED_AT, _env, write_config  # noqa: F401  (fixtures)

LOST = "the runner lost this account's results"  # transforms/stages/summary.py

SPEC = FleetSpec(seed=31, prism_centrals=2, clusters=1, hosts_per_cluster=1, vms=12, disks_per_vm=1)
DROPS = ["--runner", "tests.runners.DropsFinishBundleOutputs"]
NEVER = ["--runner", "tests.runners.NeverRuns"]
OVERRIDE = "--allow-unsupported-runner"


def args(config: str, *extra: str, run_id: str = "lost") -> list[str]:
    return ["--config", config, "--collected-at", COLLECTED_AT, "--run-id", run_id, *extra]


def test_an_unsupported_runner_is_refused_before_anything_is_called(tmp_path, prism_servers, cloudforet, capsys):
    servers = prism_servers(SPEC)
    config = write_config(tmp_path, servers, cloudforet)
    assert run(args(config, *DROPS)) == 2
    err = capsys.readouterr().err
    assert "DropsFinishBundleOutputs" in err and "Supported: FnApiRunner" in err and OVERRIDE in err
    assert sum(sum(s.requests.values()) for s in servers) == 0  # no Prism Central was asked anything
    assert not (tmp_path / "report.json").exists() and cloudforet.store.cloud_services() == []


def test_a_runner_dropping_finish_bundle_outputs_fails_every_account(tmp_path, prism_servers, cloudforet, capsys):
    servers = prism_servers(SPEC)
    config = write_config(tmp_path, servers, cloudforet)
    assert run(args(config, *DROPS, OVERRIDE)) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "ERROR"
    assert set(report["accounts"]) == {s.pc.name for s in servers}
    for account in report["accounts"].values():
        assert account["status"] == "ERROR" and account["error"].startswith(LOST), account
    out = capsys.readouterr().out
    assert "SUCCESS" not in out and LOST in out
    # the same run on the FnApiRunner: every account read whole, a success
    assert run(args(config, run_id="whole")) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "SUCCESS" and sum(a["read"]["vms"] for a in report["accounts"].values()) == 12


def test_a_runner_that_never_runs_the_summary_fails_the_launcher(tmp_path, prism_servers, cloudforet, capsys):
    servers = prism_servers(SPEC)
    config = write_config(tmp_path, servers, cloudforet)
    assert run(args(config, *NEVER, OVERRIDE)) == 4
    assert "no run report was written" in capsys.readouterr().err
    # an earlier run's report at the same place (the same run id, even) is no proof this run wrote one
    assert run(args(config)) == 0
    assert json.loads((tmp_path / "report.json").read_text())["status"] == "SUCCESS"
    assert run(args(config, *NEVER, OVERRIDE)) == 4
    assert "is the one of an earlier run" in capsys.readouterr().err
