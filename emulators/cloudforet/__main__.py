"""Run the CloudForet emulator as a process.

    python -m emulators.cloudforet --db FILE --port N [--host H] [--config FILE]
        [--latency-ms F] [--cost-create-unsupported] [--ready-file PATH]
        [--faults SPEC] [--fault-seed N] [--tls-dir DIR] [--per-service-ports [--publish-endpoints]]

When serving it prints one JSON line (endpoint, with --per-service-ports
each service's own address under "endpoints", domain, workspace, app tokens)
and writes the same JSON atomically to --ready-file, which is how
scripts learn the port and the app token. SIGTERM/SIGINT stop it (exit 0).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from plugin.files import write_atomic

from ..gctune import relax_gc, settle_gc
from .config import EmulatorConfig
from .server import CloudForetEmulator


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulators.cloudforet", description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file holding all state")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: pick a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", help="YAML/JSON file with EmulatorConfig fields")
    parser.add_argument("--latency-ms", type=float, default=None, help="sleep added to every RPC")
    parser.add_argument("--cost-create-unsupported", action="store_true",
                        help="Cost.create answers ERROR_NOT_SUPPORT_API")
    parser.add_argument("--ready-file", help="write the ready JSON here (atomically) once serving")
    parser.add_argument("--faults", metavar="SPEC",
                        help="fault injection spec, e.g. 'UNAVAILABLE:0.02,DEADLINE_EXCEEDED_AFTER@calls=5' "
                             "(see emulators/faultspec.py and emulators/cloudforet/faults.py)")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault draws")
    parser.add_argument("--tls-dir", metavar="DIR",
                        help="generate a CA + server certificate in DIR and serve TLS")
    parser.add_argument("--per-service-ports", action="store_true",
                        help="also serve each service on a port of its own, as a real deployment does")
    parser.add_argument("--publish-endpoints", action="store_true",
                        help="identity's Endpoint.list names those ports (a stock install lists nothing)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    relax_gc()
    args = _parse_args(argv)
    config = EmulatorConfig.from_file(args.config) if args.config else EmulatorConfig()
    if args.latency_ms is not None:
        config.latency_ms = args.latency_ms
    if args.cost_create_unsupported:
        config.cost_create_unsupported = True
    if args.publish_endpoints:
        config.published_endpoints = "self"

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    faults = credentials = tls_files = None
    if args.faults:
        from .faults import CloudForetFaults
        try:
            faults = CloudForetFaults(args.faults, seed=args.fault_seed)
        except ValueError as exc:
            print(f"error: --faults: {exc}", file=sys.stderr)
            return 2
    if args.tls_dir:
        from ..tls import grpc_server_credentials, make_ca_and_server_cert
        tls_files = make_ca_and_server_cert(args.tls_dir, list(dict.fromkeys([args.host, "127.0.0.1", "localhost"])))
        credentials = grpc_server_credentials(tls_files)

    emulator = CloudForetEmulator(args.db, config, host=args.host, port=args.port,
                                  server_credentials=credentials, faults=faults,
                                  per_service=args.per_service_ports).start()
    try:
        ready: dict[str, Any] = {
            "endpoint": emulator.endpoint,
            **({"endpoints": emulator.endpoints} if args.per_service_ports else {}),
            "domain_id": config.domain_id,
            "workspace_id": config.workspace_id,
            "app_tokens": {app["app_id"]: emulator.app_token(app["app_id"]) for app in config.apps},
        }
        if tls_files is not None:
            ready["tls"] = True
            ready["ca_bundle"] = os.path.abspath(tls_files.ca_pem)
        if args.faults:
            ready["faults"] = args.faults
        settle_gc()
        line = json.dumps(ready)
        if args.ready_file:
            write_atomic(args.ready_file, line + "\n")
        print(line, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop(grace=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
