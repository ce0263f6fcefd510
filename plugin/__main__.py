"""Run the data-source plugin server.

    python -m plugin --port N --store DIR [--host H] [--metric-store DIR] [--cost-store DIR]
        [--ready-file PATH]

``--store DIR`` serves DIR/metrics (the pipeline's metric store) and
DIR/costs (its cost store). Once serving it prints and atomically writes
``{"endpoint": "HOST:PORT"}`` to --ready-file. SIGTERM/SIGINT: clean exit 0.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading

from .server import PluginServer, store_paths


def write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m plugin", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--store", help="directory holding metrics/ and costs/")
    parser.add_argument("--metric-store", help="metric store root (default STORE/metrics)")
    parser.add_argument("--cost-store", help="cost store root (default STORE/costs)")
    parser.add_argument("--ready-file", help="write {\"endpoint\": ...} here (atomically) once serving")
    args = parser.parse_args(argv)
    try:
        metric_root, cost_root = store_paths(args.store, args.metric_store, args.cost_store)
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = PluginServer(metric_root, cost_root, host=args.host, port=args.port).start()
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
