"""The command line a newcomer meets: ``python -m pipeline`` as a real process.

Beam 2.77.0 logs "apitools not found, and bigquery client libraries are not
available..." on the root logger when imported without its [gcp] extra
(apache_beam/io/gcp/internal/clients/bigquery/__init__.py); that line must not
open the CLI's output, and the collector's own warnings must still show.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import yaml

from emulators.cloudforet import auth as emu_auth
from emulators.prism.fleet import FleetSpec
from pipeline.import_noise import BEAM_APITOOLS_MISSING, DropImportNoise
from tests.helpers import PRISM_PASSWORD, ROOT, account_entry

BEAM_LINE = ("apitools not found, and bigquery client libraries are not available despite the import "
             "not raising an ImportError.")


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def test_help_says_what_the_tool_does_without_beams_import_noise():
    done = cli("--help")
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    assert "apitools" not in out
    assert done.stdout.startswith("usage: python -m pipeline")
    assert "Collects Nutanix Prism Central into CloudForet" in done.stdout
    # both runs (a collection, a snapshot replay), in plain text rather than docstring markup
    assert "python -m pipeline --config FILE [Beam options]" in done.stdout
    assert "--source snapshot --snapshot" in done.stdout
    assert "``" not in done.stdout
    lines = [line.strip() for line in done.stdout.splitlines()]
    for code, meaning in (("0", "every account collected"), ("1", "an account failed entirely"),
                          ("2", "unusable configuration"), ("3", "CloudForet unreachable or login refused")):
        assert any(line.startswith(f"{code}  {meaning}") for line in lines), (code, done.stdout)
    assert "README.md" in done.stdout


def test_the_filter_drops_only_beams_apitools_record():
    drop = DropImportNoise()

    def record(name: str, msg: str, level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, msg, None, None)

    assert BEAM_LINE.startswith(BEAM_APITOOLS_MISSING)
    assert not drop.filter(record("root", BEAM_LINE))
    assert drop.filter(record("root", "disk full"))
    assert drop.filter(record("apache_beam.io", BEAM_LINE))  # only the root-logger record Beam writes at import
    assert drop.filter(record("pipeline", "the CloudForet app secret in X expires on ..."))


def test_warnings_still_show_once_the_cli_is_imported():
    """After the CLI module is imported (Beam with it), a warning on the root
    logger, on Beam's and on the collector's own loggers still reaches stderr."""
    code = ("import logging, pipeline.__main__, apache_beam\n"
            "logging.warning('root: a real warning')\n"
            "logging.getLogger('apache_beam.runners').warning('beam: a real warning')\n"
            "logging.getLogger('pipeline').warning('pipeline: a real warning')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "apitools" not in done.stderr
    for who in ("root", "beam", "pipeline"):
        assert f"{who}: a real warning" in done.stderr


def test_a_collections_own_warning_shows_and_beams_noise_does_not(tmp_path, prism_servers, cloudforets):
    """A real run from the command line with an app secret 10 days from expiry:
    the preflight's warning is on stderr, the apitools line is not."""
    servers = prism_servers(FleetSpec(seed=3, prism_centrals=1, clusters=1, hosts_per_cluster=1, vms=4,
                                      disks_per_vm=1))
    emu = cloudforets("cf")
    cfg = emu.config
    short = emu.signer.issue("app-nutanix-collector", emu_auth.CLIENT_SECRET, emu_auth.SCOPE_WORKSPACE,
                             "WORKSPACE_OWNER", cfg.domain_id, cfg.workspace_id, 10 * 86400)
    raw = {
        "accounts": [account_entry(s) for s in servers],
        "cloudforet": {"endpoint": emu.endpoint, "domain_id": cfg.domain_id, "workspace_id": cfg.workspace_id,
                       "auth": {"token_env": "TEST_CF_TOKEN"}, "cost_mode": "datasource"},
        "rate_card": {"default": {"vcpu_hour": 0.02, "gib_ram_hour": 0.005, "gib_storage_month": 0.05,
                                  "currency": "USD"}},
        "metric_store": {"path": str(tmp_path / "metrics")},
        "cost_store": {"path": str(tmp_path / "costs")},
        "report": {"path": str(tmp_path / "report.json")},
        "snapshot": {"enabled": False},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    done = cli("--config", str(tmp_path / "config.yaml"), "--collected-at", "2026-11-28T06:00:00Z",
               env={"TEST_CF_TOKEN": short, "TEST_PRISM_PASSWORD": PRISM_PASSWORD})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "apitools" not in done.stdout + done.stderr
    warned = [line for line in done.stderr.splitlines() if " WARNING pipeline: " in line]
    assert len(warned) == 1 and "TEST_CF_TOKEN expires on" in warned[0] and "(in 9 days)" in warned[0], warned
    assert short not in done.stdout + done.stderr
    assert json.loads((tmp_path / "report.json").read_text())["status"] == "SUCCESS"
