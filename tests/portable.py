"""A portable Beam deployment on loopback, as production's is shaped: a job service, and SDK
workers from an EXTERNAL worker pool (``python -m apache_beam.runners.worker.worker_pool_main``)
that start with the pool's environment, never the launcher's.

The job service here is Beam's own Python one, with a job's bundles spread over several SDK
workers (tests/job_service.py): Flink's job server takes the same job the same way
(``--runner PortableRunner --job_endpoint``; shared/docs/beam.md, "Runners"), and on this
machine Beam's Flink job server jar cannot be had (README, "Flink").
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the pool's workers are in its process group
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start(name: str, args: list[str], env: dict, log_dir: Path, ready_s: float = 60.0) -> Service:
    """Starts a Beam gRPC service and waits until it accepts a channel (an event, not a sleep)."""
    port = free_port()
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", *args, str(port)], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=log_dir)
    service = Service(name, process, port, log)
    channel = grpc.insecure_channel(f"localhost:{port}")
    deadline = time.monotonic() + ready_s
    try:
        while True:
            try:
                grpc.channel_ready_future(channel).result(timeout=1.0)
                return service
            except grpc.FutureTimeoutError:
                if process.poll() is not None or time.monotonic() > deadline:
                    service.stop()
                    raise RuntimeError(f"{name} did not start (exit {process.poll()}): {log.read_text()[-2000:]}")
    finally:
        channel.close()


@dataclass
class PortableDeployment:
    """A job service and a worker pool; ``options`` are what the launcher passes to Beam."""

    job_service: Service
    worker_pool: Service
    extra: list[str] = field(default_factory=list)

    @property
    def options(self) -> list[str]:
        return ["--runner", "PortableRunner", "--job_endpoint", f"localhost:{self.job_service.port}",
                "--environment_type", "EXTERNAL", "--environment_config", f"localhost:{self.worker_pool.port}",
                *self.extra]

    def workers_started(self) -> int:
        """SDK worker processes the pool started (it logs each command it runs)."""
        return self.worker_pool.log.read_text().count("Starting worker with command")

    def stop(self) -> None:
        self.job_service.stop()
        self.worker_pool.stop()


def start_portable(log_dir: Path, worker_env: dict[str, str], workers: int = 1,
                   extra: Sequence[str] = (), bundle_repeat: int = 0) -> PortableDeployment:
    """The worker pool's environment is the workers': ``python`` from this interpreter's directory
    first on PATH (the pool starts its workers as ``python``), this checkout importable, and
    ``worker_env`` (the secrets' variables the config names)."""
    env = {**os.environ, **worker_env,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    pool = start("worker-pool", ["apache_beam.runners.worker.worker_pool_main", "--service_port"], env, log_dir)
    try:
        service_env = {k: v for k, v in env.items() if k not in worker_env}  # the secrets are the workers' only
        jobs = start("job-service", ["tests.job_service", "--workers", str(workers),
                                     "--bundle-repeat", str(bundle_repeat), "--port"],
                     service_env, log_dir)
    except Exception:
        pool.stop()
        raise
    return PortableDeployment(jobs, pool, list(extra))
