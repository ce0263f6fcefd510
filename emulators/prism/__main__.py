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

from plugin.files import write_atomic

from ..gctune import relax_gc, settle_gc
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
                                description="Emulated Nutanix Prism Central v3 and v4 APIs")
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
    p.add_argument("--real-world-quirks", action="store_true",
                   help="add VMs being created/changed/in error, duplicate and link-local IPs, a nameless host "
                        "(see FleetSpec.real_world_quirks)")
    p.add_argument("--username", default="admin")
    p.add_argument("--password-env", default="PRISM_PASSWORD",
                   help=f"environment variable holding the password (fallback {DEFAULT_PASSWORD!r})")
    p.add_argument("--max-page", type=_bounded(int, 1), default=500)
    p.add_argument("--ready-file", default=None, help="write the ready JSON here (atomically)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.add_argument("--faults", default=None, metavar="SPEC",
                   help="fault injection spec, e.g. '503:0.02,429:0.01@retry_after=1,401@after=40' "
                        "(see emulators/faultspec.py and emulators/prism/faults.py)")
    p.add_argument("--fault-seed", type=int, default=0,
                   help="seed of the fault draws (Prism Central k uses seed+k)")
    p.add_argument("--apis", choices=("v3,v4", "v3", "v4"), default="v3,v4",
                   help="the APIs served: 'v3' is a Prism Central older than pc.2024.1 (v4 paths answer 404)")
    p.add_argument("--v4-version", default="v4.0", help="highest v4 version served (v4.0 .. v4.3)")
    p.add_argument("--api-key-env", default=None,
                   help="environment variable holding an API key accepted as X-ntnx-api-key on v4 paths")
    p.add_argument("--tls-dir", default=None, metavar="DIR",
                   help="generate a CA + server certificate in DIR and serve HTTPS")
    return p


def _faults(args: argparse.Namespace, index: int):
    if not args.faults:
        return None
    from .faults import PrismFaults
    return PrismFaults(args.faults, seed=args.fault_seed + index)


def main(argv: list[str] | None = None) -> int:
    relax_gc()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.port and args.port + args.prism_centrals - 1 > 65535:
        parser.error("--port + --prism-centrals exceeds 65535")
    spec = FleetSpec(seed=args.seed, prism_centrals=args.prism_centrals, clusters=args.clusters,
                     hosts_per_cluster=args.hosts_per_cluster, vms=args.vms,
                     disks_per_vm=args.disks_per_vm, power_on_ratio=args.power_on_ratio,
                     stats_interval_s=args.stats_interval_s, real_world_quirks=args.real_world_quirks)
    password = os.environ.get(args.password_env) or DEFAULT_PASSWORD
    if args.faults:
        from .faults import PrismFaults
        try:
            PrismFaults.parse(args.faults)
        except ValueError as e:
            parser.error(f"--faults: {e}")
    ssl_context = tls_files = None
    if args.tls_dir:
        from ..tls import make_ca_and_server_cert, prism_ssl_context
        hostnames = list(dict.fromkeys([args.host, "127.0.0.1", "localhost"]))
        tls_files = make_ca_and_server_cert(args.tls_dir, hostnames)
        ssl_context = prism_ssl_context(tls_files)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    servers: list[PrismServer] = []
    try:
        for pc in generate_fleet(spec):
            port = args.port + pc.index if args.port else 0
            servers.append(PrismServer(pc, username=args.username, password=password,
                                       host=args.host, port=port, max_page=args.max_page,
                                       verbose=args.verbose, ssl_context=ssl_context,
                                       faults=_faults(args, pc.index), apis=tuple(args.apis.split(",")),
                                       v4_version=args.v4_version,
                                       api_key=os.environ.get(args.api_key_env) if args.api_key_env else None
                                       ).start())
    except OSError as e:
        for s in servers:
            s.stop()
        print(f"error: cannot listen: {e}", file=sys.stderr)
        return 1

    entries = [{"name": s.pc.name, "uuid": s.pc.uuid, "url": s.url, "host": s.host, "port": s.port,
                "vms": s.pc.vm_count()} for s in servers]
    for entry in entries:
        entry["scheme"] = "https" if tls_files else "http"
        if tls_files:
            entry["ca_bundle"] = os.path.abspath(tls_files.ca_pem)
        if args.faults:
            entry["faults"] = args.faults
    settle_gc()
    ready = json.dumps({"prism_centrals": entries})
    if args.ready_file:
        write_atomic(args.ready_file, ready + "\n")
    print(ready, flush=True)

    while not stop.wait(0.5):
        pass
    for s in servers:
        s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
