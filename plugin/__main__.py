"""Run one data-source plugin server; each protocol is its own server (its own port).

    python -m plugin monitoring --port N [--store DIR] [--host H] [--metric-store DIR] [--ready-file PATH]
    python -m plugin cost --port M [--store DIR] [--host H] [--cost-store DIR] [--ready-file PATH]
    python -m plugin collector --port K [--host H] [--ready-file PATH]

``monitoring`` serves DIR/metrics (the pipeline's metric store), ``cost``
serves DIR/costs (its cost store); ``collector`` is the inventory collector
plugin CloudForet's Inventory runs (it reads Prism itself). Under CloudForet
the data source's ``plugin_info.options`` name the stores instead (``store``,
or ``metric_store`` / ``cost_store``: see ``store_options``), and the images
run these commands without --store (``images``). Once serving it prints and atomically
writes ``{"endpoint": "HOST:PORT"}`` to --ready-file. SIGTERM/SIGINT: clean
exit 0. CloudForet binds a plugin's services by short name, so the two
protocols (both have a ``DataSource``) cannot share one server.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from .files import write_atomic
from .server import CostPluginServer, MonitoringPluginServer
from .store_options import store_root

NO_PROTOCOL = ("name the plugin protocol to serve: `python -m plugin monitoring --port N --store DIR` "
               "(serves DIR/metrics), `python -m plugin cost --port M --store DIR` (serves DIR/costs) and "
               "`python -m plugin collector --port K` (the inventory collector Inventory runs), one server "
               "each: CloudForet binds plugin services by short name, so monitoring's and "
               "cost's DataSource cannot share a port")


PROTOCOLS = ("monitoring", "cost", "collector")


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--port", type=int, default=0, help="port to serve on (0: a free port)")
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--store", help="the pipeline's output directory (holding metrics/ and costs/): a path, "
                     "or a URI the pipeline writes to (gs://, s3://, hdfs://, file://); the default "
                     "of calls whose options name no store")
    sub.add_argument("--ready-file", help="write {\"endpoint\": ...} here (atomically) once serving")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m plugin", description=__doc__.splitlines()[0])
    protocols = parser.add_subparsers(dest="protocol", metavar="{monitoring,cost,collector}")
    mon = protocols.add_parser("monitoring", help="the monitoring data-source plugin (DataSource, Metric)")
    _common(mon)
    mon.add_argument("--metric-store", help="metric store root (default STORE/metrics)")
    cost = protocols.add_parser("cost", help="the cost-analysis data-source plugin (DataSource, Job, Cost)")
    _common(cost)
    cost.add_argument("--cost-store", help="cost store root (default STORE/costs)")
    collector = protocols.add_parser("collector", help="the inventory collector plugin (Collector, Job): "
                                     "Inventory runs it, it reads Prism with the secret Inventory passes")
    collector.add_argument("--port", type=int, default=0, help="port to serve on (0: a free port)")
    collector.add_argument("--host", default="127.0.0.1")
    collector.add_argument("--ready-file", help="write {\"endpoint\": ...} here (atomically) once serving")
    return parser


def make_server(args: argparse.Namespace):
    if args.protocol == "collector":
        from .collector.server import CollectorPluginServer  # reads Prism: imports the pipeline's steps

        return CollectorPluginServer(host=args.host, port=args.port)
    if args.protocol == "monitoring":
        return MonitoringPluginServer(store_root(args.store, args.metric_store, "metrics"),
                                      host=args.host, port=args.port)
    return CostPluginServer(store_root(args.store, args.cost_store, "costs"),
                            host=args.host, port=args.port)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in PROTOCOLS + ("-h", "--help"):  # e.g. the old `python -m plugin --port N`
        parser.error(NO_PROTOCOL)
    args = parser.parse_args(argv)
    try:
        server = make_server(args)
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    try:
        line = json.dumps({"endpoint": server.endpoint})
        if args.ready_file:
            write_atomic(args.ready_file, line + "\n")
        print(line, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop(grace=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
