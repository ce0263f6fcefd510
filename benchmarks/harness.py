"""Start the emulators as separate processes and run the pipeline against them,
as a user would: nothing shares a process or a GIL with what is measured."""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# the CloudForet emulator's default DOMAIN_ADMIN user and project (emulators/cloudforet/config.py)
CLOUDFORET_USER, CLOUDFORET_PASSWORD, COST_PROJECT = "collector@example.com", "collector-pass", "project-nutanix"
PRISM_PASSWORD = "bench-prism-password"


def _wait_ready(path: Path, proc: subprocess.Popen, name: str, timeout: float = 60) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size:
            return json.loads(path.read_text())
        if proc.poll() is not None:
            raise RuntimeError(f"{name} emulator exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{name} emulator not ready after {timeout}s")


@contextmanager
def emulators(workdir: Path, prism_args: list[str], cloudforet_args: Sequence[str] = ()):
    env = dict(os.environ, PRISM_PASSWORD=PRISM_PASSWORD)
    procs = []
    try:
        p = subprocess.Popen([sys.executable, "-m", "emulators.prism", "--port", "0", "--ready-file",
                              str(workdir / "prism.json"), *prism_args], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        c = subprocess.Popen([sys.executable, "-m", "emulators.cloudforet", "--db", str(workdir / "cf.sqlite"),
                              "--port", "0", "--ready-file", str(workdir / "cf.json"), *cloudforet_args],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(c)
        cf = dict(_wait_ready(workdir / "cf.json", c, "CloudForet"), db=str(workdir / "cf.sqlite"))
        yield _wait_ready(workdir / "prism.json", p, "Prism"), cf
    finally:
        stop_processes(procs)


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every process, then wait for each (killing what takes over 20 s)."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def write_config(workdir: Path, prism: dict, cf: dict, **overrides) -> Path:
    raw: dict[str, Any] = {
        "accounts": [{"name": pc["name"], "host": pc["host"], "port": pc["port"], "scheme": "http",
                      "username": "admin", "password_env": "PRISM_PASSWORD"} for pc in prism["prism_centrals"]],
        "prism": {"page_size": 500, "max_requests_per_s": 50, "max_concurrency": 8, "api": "v3"},  # v4: override
        # api mode (Cost.create) as on cost-analysis 2.0.108: a DOMAIN_ADMIN user (domain scope to
        # look costs up, workspace scope to create them) and the project the costs belong to
        "cloudforet": {"endpoint": cf["endpoint"], "domain_id": cf["domain_id"], "workspace_id": cf["workspace_id"],
                       "auth": {"user_id": CLOUDFORET_USER, "password_env": "CLOUDFORET_PASSWORD"},
                       "cost_mode": "api", "cost_project_id": COST_PROJECT, "batch_size": 200},
        "metric_store": {"path": str(workdir / "metrics")},
        "report": {"path": str(workdir / "report.json")},
        "snapshot": {"path": str(workdir / "snapshots")},
    }
    for key, value in overrides.items():
        raw[key] = {**raw.get(key, {}), **value}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_pipeline(config: Path, cf: dict, extra: Sequence[str] = (), collected_at: str = "2026-11-28T06:00:00Z",
                 run_id: str | None = None) -> dict:
    """Runs ``python -m pipeline`` as a child; returns time, peak RSS and the report."""
    env = dict(os.environ, PRISM_PASSWORD=PRISM_PASSWORD, CLOUDFORET_PASSWORD=CLOUDFORET_PASSWORD,
               CLOUDFORET_TOKEN=next(iter(cf["app_tokens"].values())))
    args = [sys.executable, "-m", "pipeline", "--config", str(config), "--collected-at", collected_at,
            "--log-level", "WARNING", *extra]
    if run_id:
        args += ["--run-id", run_id]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"pipeline exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads(Path(yaml.safe_load(config.read_text())["report"]["path"]).read_text())
    return {"seconds": seconds, "peak_rss_mib": max(peak_kib, before) / 1024, "report": report,
            "stdout": proc.stdout}


def totals(report: dict) -> dict:
    t = {"vms": 0, "created": 0, "updated": 0, "failed": 0, "costs": 0, "points": 0}
    for a in report["accounts"].values():
        t["vms"] += a["read"]["vms"]
        t["created"] += a["inventory"]["created"]
        t["updated"] += a["inventory"]["updated"]
        t["failed"] += a["inventory"]["failed"] + a["cost"]["failed"]
        t["costs"] += a["cost"]["created"]
        t["points"] += a["metrics"]["points"]
    return t


def tempdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="nutanix-bench-"))
