"""CLI: serve an emulated fleet, one Prism Central per port, until SIGTERM/SIGINT.

Prism Central k listens on ``--port + k`` (``--port 0``: each on a free port).
When all are listening, one JSON line describing them is printed on stdout and,
with ``--ready-file``, written atomically to that file, so scripts and tests can
wait for readiness without polling ports. The password is never printed.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Callable

from .fleet import FleetSpec, generate_fleet
from .server import PrismServer

DEFAULT_PASSWORD = "nutanix/4u"


def _bounded(kind: Callable[[str], float], lo: float, hi: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(
                f"{text} not in [{lo}, {hi if hi is not None else 'inf'}]")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulators.prism",
                                description="Emulated Nutanix Prism Central v3 API")
    p.add_argument("--vms", type=_bounded(int, 0), default=100, help="VMs in the whole fleet")
    p.add_argument("--port", type=_bounded(int, 0, 65535), default=9440,
                   help="port of Prism Central 0 (k is on port+k); 0 = free ports")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--prism-centrals", type=_bounded(int, 1, 256), default=1)
    p.add_argument("--clusters", type=_bounded(int, 1, 250), default=2,
                   help="workload clusters per Prism Central")
    p.add_argument("--hosts-per-cluster", type=_bounded(int, 1, 120), default=3)
    p.add_argument("--disks-per-vm", type=_bounded(int, 0, 64), default=2)
    p.add_argument("--power-on-ratio", type=_bounded(float, 0.0, 1.0), default=0.8)
    p.add_argument("--stats-interval-s", type=_bounded(int, 1), default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--username", default="admin")
    p.add_argument("--password-env", default="PRISM_PASSWORD",
                   help=f"environment variable holding the password (fallback {DEFAULT_PASSWORD!r})")
    p.add_argument("--max-page", type=_bounded(int, 1), default=500)
    p.add_argument("--ready-file", default=None, help="write the ready JSON here (atomically)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.port and args.port + args.prism_centrals - 1 > 65535:
        parser.error("--port + --prism-centrals exceeds 65535")
    spec = FleetSpec(seed=args.seed, prism_centrals=args.prism_centrals, clusters=args.clusters,
                     hosts_per_cluster=args.hosts_per_cluster, vms=args.vms,
                     disks_per_vm=args.disks_per_vm, power_on_ratio=args.power_on_ratio,
                     stats_interval_s=args.stats_interval_s)
    password = os.environ.get(args.password_env) or DEFAULT_PASSWORD

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    servers: list[PrismServer] = []
    try:
        for pc in generate_fleet(spec):
            port = args.port + pc.index if args.port else 0
            servers.append(PrismServer(pc, username=args.username, password=password,
                                       host=args.host, port=port, max_page=args.max_page,
                                       verbose=args.verbose).start())
    except OSError as e:
        for s in servers:
            s.stop()
        print(f"error: cannot listen: {e}", file=sys.stderr)
        return 1

    ready = json.dumps({"prism_centrals": [
        {"name": s.pc.name, "uuid": s.pc.uuid, "url": s.url, "host": s.host, "port": s.port,
         "vms": s.pc.vm_count()} for s in servers]})
    if args.ready_file:
        _write_atomic(args.ready_file, ready + "\n")
    print(ready, flush=True)

    while not stop.wait(0.5):
        pass
    for s in servers:
        s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
