"""The least any run can do: read every VM page and its stats from Prism, and nothing else.

    python -m benchmarks.read_floor --config FILE --collected-at ISO [--json-out F]
                                    [--metric-store DIR] [Beam options]

A run over an unchanged fleet still has to read the whole fleet (Prism v3 has
no change feed) and the new window of stats for every VM (new data each run),
in a new process. This child does exactly that with the pipeline's own
``ReadFromPrism``, options and runner, and writes nothing: its wall time is a
floor under any second run, so ``first run / this`` is the highest
first/second ratio any sink design could reach on the same machine.
With ``--metric-store DIR`` it also stores the new points there (the
pipeline's ``ExtractMetrics`` and ``WriteToMetricStore``), which every run
must do as well: a tighter floor.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

_START = time.monotonic()  # before Beam is imported: the pipeline's process pays that too

import apache_beam as beam  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.graph import _extract_metrics  # noqa: E402
from pipeline.run import _collected_at, beam_options, share_rate_limit  # noqa: E402
from transforms.settings import RunContext  # noqa: E402
from transforms.sinks.files.metric_store import WriteToMetricStore  # noqa: E402
from transforms.sources.prism import ReadFromPrism, parse_stats_entity  # noqa: E402


def _tally(_key, stats) -> tuple[int, int]:
    return 1, sum(map(len, parse_stats_entity(stats).values())) if stats is not None else 0


def _write_counts(counts: tuple, path: str) -> None:
    with open(path, "w") as fh:
        json.dump({"vms": counts[0], "points": counts[1]}, fh)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.read_floor")
    ap.add_argument("--config", required=True)
    ap.add_argument("--collected-at", required=True)
    ap.add_argument("--json-out")
    ap.add_argument("--metric-store", help="also store the new points here")
    args, extra = ap.parse_known_args(argv)
    config = share_rate_limit(load_config(args.config), extra)
    ctx = RunContext.create(_collected_at(args.collected_at), config.prism.stats_window_s,
                            config.prism.stats_interval_s, "read-floor")
    options, runner = beam_options(extra)
    p = beam.Pipeline(runner=runner, options=options)
    stats = (p | beam.Create([a.name for a in config.accounts])
             | ReadFromPrism(config, ctx)).vms | beam.MapTuple(lambda key, vm: (key, vm.stats))
    if args.metric_store:  # the points are counted from what is stored
        points = stats | _extract_metrics(ctx)
        _ = points | WriteToMetricStore(args.metric_store, ctx.run_id)
        tallies = ((stats | "PerVm" >> beam.Map(lambda _: (1, 0)),
                    points | "PerTable" >> beam.Map(lambda b: (0, b["points"].num_rows))) | beam.Flatten())
    else:  # counting the points means parsing them
        tallies = stats | beam.MapTuple(_tally)
    counted = tallies | beam.CombineGlobally(lambda rows: tuple(map(sum, zip(*rows))) if rows else (0, 0))
    out = args.json_out or "read_floor.json"
    counted | beam.Map(_write_counts, out)
    p.run().wait_until_finish()
    with open(out) as fh:
        result = json.load(fh)
    result["seconds"] = time.monotonic() - _START
    with open(out, "w") as fh:
        json.dump(result, fh)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
