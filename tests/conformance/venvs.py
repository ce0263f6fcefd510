"""Builds (once) the virtualenvs of the real CloudForet services the conformance suite runs.

Each service gets a virtualenv of its own, outside the project's .venv (the
services need protobuf 3 and pydantic 1, the collector protobuf 6), under
``.conformance/<service>-<hash of its pinned requirements>/`` in the repository
root. A virtualenv whose requirements did not change is reused as it is.

    python tests/conformance/venvs.py            # build what is missing, print the paths
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BASE = ROOT / ".conformance"
SERVICES = {"identity": "requirements-identity.txt", "cost-analysis": "requirements-cost-analysis.txt"}
MARKER = ".built"


def venv_dir(service: str) -> Path:
    """Where the service's virtualenv lives: keyed by the exact pins it is built from."""
    pins = (HERE / SERVICES[service]).read_bytes()
    return BASE / f"{service}-{hashlib.sha256(pins).hexdigest()[:12]}"


def python_of(service: str) -> Path:
    return venv_dir(service) / "bin" / "python"


def ensure(service: str, log=sys.stderr) -> Path:
    """The service's virtualenv python, built first if it is missing or was left half-built."""
    target = venv_dir(service)
    if (target / MARKER).exists():
        return target / "bin" / "python"
    if target.exists():
        shutil.rmtree(target)  # a build that stopped half-way
    print(f"conformance: building the {service} virtualenv in {target} (first run only)", file=log, flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(target)], check=True)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", "-r", str(HERE / SERVICES[service])], check=True)
    subprocess.run([str(target / "bin" / "python"), "-m", "pip", "check"], check=True,
                   stdout=subprocess.DEVNULL)
    (target / MARKER).write_text("ok\n")
    for old in BASE.glob(f"{service}-*"):  # virtualenvs of earlier pins
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target / "bin" / "python"


if __name__ == "__main__":
    for name in SERVICES:
        print(name, ensure(name))
