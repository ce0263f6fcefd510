"""Replay throughput: a snapshot of N VMs through the pipeline into a sink that
discards, next to a plain read of the same files (the ceiling), in one run.

    python -m benchmarks replay --vms 100000 [--format avro|parquet] [--keep DIR]

1. Generates a snapshot like ``WriteSnapshot`` writes it (same records through
   ``transforms.common.snapshot_format.to_record``, Avro with the deflate codec like Beam's
   WriteToAvro or Parquet like WriteToParquet, 8 shards ``entities-0000K-of-00008``,
   ``manifest.json`` made by ``write_manifest`` itself) from the emulator's
   fleet: 2 Prism Centrals, 4 clusters x 4 hosts each, 2 disks/VM, and per VM
   a ``vm`` record and a ``vm_stats`` record (the groups ``entity_result`` of a
   1-hour window at 300 s). Two processes write the shards. With ``--keep DIR``
   the snapshot is kept under DIR and reused by later runs.
2. Measures, each in a fresh child process (so peak RSS is the measurement's own):
   - ceiling: every record read with fastavro (pyarrow for Parquet), and the
     same read plus ``json.loads(payload)``, which any consumer must do;
   - replay: ``read_snapshot`` + ``derive`` from ``pipeline/graph.py`` on the
     FnApiRunner, every output (resources, costs, metric batches, status, dead
     letters) counted and discarded; in_memory, then 2 worker processes.
   Entities/s is snapshot records / wall seconds of ``Pipeline.run`` to finish.

``--profile FILE`` also runs the in_memory replay under cProfile and prints the
hotspots (use it on a small snapshot, e.g. ``--vms 10000``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import posixpath
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
SHARDS = 8
COLLECTED_AT = "2026-11-28T06:00:00Z"
FLEET: dict[str, Any] = {"seed": 7, "prism_centrals": 2, "clusters": 4, "hosts_per_cluster": 4, "disks_per_vm": 2}
NS = "replay_bench"
MIB = 1024.0  # ru_maxrss is KiB on Linux


# -- the snapshot ------------------------------------------------------------
def _context(vms: int, fmt: str):
    from transforms.settings import RunContext
    epoch = datetime.fromisoformat(COLLECTED_AT.replace("Z", "+00:00")).timestamp()
    return RunContext.create(epoch, 3600, 300, run_id=f"bench-replay-{vms}vms-{fmt}")


def _base_url(pc) -> str:
    return f"https://10.{(40 + pc.index) % 256}.250.10:9440"


def stats_entity(pc, i: int, ctx) -> dict:
    """VM i's groups ``entity_result`` as the emulator answers the live read's request."""
    from transforms.sources.prism import STATS_ATTRIBUTES
    series = pc.vm_stats(i, ctx.stats_start_ms, ctx.stats_end_ms, ctx.stats_interval_s)
    return {"entity_id": pc.vm_uuid(i),
            "data": [{"name": a, "values": [{"values": [v], "time": t} for t, v in series.get(a, [])]}
                     for a in STATS_ATTRIBUTES]}


def shard_records(vms: int, fmt: str, shard: int, shards: int, progress=None):
    """Shard k: VMs g with g % shards == k (and their stats); shard 0 also has clusters and hosts."""
    from emulators.prism.fleet import FleetSpec, generate_fleet
    from transforms.common.snapshot_format import to_record
    from transforms.sources.prism import STATS
    ctx = _context(vms, fmt)
    sid = ctx.run_id
    ms = int(datetime.fromisoformat(COLLECTED_AT.replace("Z", "+00:00")).timestamp() * 1000)
    fleets = generate_fleet(FleetSpec(vms=vms, **FLEET))
    if shard == 0:
        for pc in fleets:
            for kind, entities in (("cluster", pc.cluster_entities()), ("host", pc.host_entities())):
                for e in entities:
                    yield to_record(sid, ms, pc.name, kind, e["metadata"]["uuid"], _base_url(pc), e)
    n_pc = len(fleets)
    for done, g in enumerate(range(shard, vms, shards), 1):
        pc, i = fleets[g % n_pc], g // n_pc
        entity = pc.vm_entity(i)
        uuid = entity["metadata"]["uuid"]
        yield to_record(sid, ms, pc.name, "vm", uuid, _base_url(pc), entity)
        yield to_record(sid, ms, pc.name, STATS, uuid, _base_url(pc), stats_entity(pc, i, ctx))
        if progress and done % 5000 == 0:
            progress(done)


def _write_shard(job: tuple) -> tuple[str, list, int, float]:
    directory, vms, fmt, shard, shards = job
    from transforms.common.snapshot_format import FORMATS, avro_schema
    path = os.path.join(directory, f"entities-{shard:05d}-of-{shards:05d}{FORMATS[fmt]}")
    counts: Counter = Counter()
    started = time.perf_counter()

    def progress(done: int) -> None:
        print(f"  shard {shard}: {done} VMs ({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)

    def counted():
        for r in shard_records(vms, fmt, shard, shards, progress):
            counts[(r["account"], r["kind"])] += 1
            yield r

    if fmt == "avro":
        import fastavro
        schema = fastavro.parse_schema(avro_schema())
        with open(path, "wb") as fh:  # Beam's _FastAvroSink: fastavro Writer, deflate, default sync interval
            fastavro.writer(fh, schema, counted(), codec="deflate")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from schemas.parquet import SNAPSHOT_ENTITY
        names = SNAPSHOT_ENTITY.names
        with pq.ParquetWriter(path, SNAPSHOT_ENTITY, compression="none") as w:  # WriteToParquet's codec='none'
            batch = []
            for r in counted():
                batch.append(r)
                if len(batch) == 1000:
                    w.write_table(pa.Table.from_pylist([{k: x[k] for k in names} for x in batch], SNAPSHOT_ENTITY))
                    batch = []
            if batch:
                w.write_table(pa.Table.from_pylist([{k: x[k] for k in names} for x in batch], SNAPSHOT_ENTITY))
    return path, sorted(counts.items()), sum(counts.values()), time.perf_counter() - started


def generate(root: str, vms: int, fmt: str, shards: int = SHARDS, processes: int = 2) -> tuple[str, dict, float]:
    """Writes ``<root>/<snapshot_id>/`` (entity files + manifest.json); returns (dir, manifest, seconds)."""
    import multiprocessing

    from transforms.sinks.files.snapshot import write_manifest
    from transforms.sources.snapshot import validate_snapshot
    ctx = _context(vms, fmt)
    directory = os.path.join(root, ctx.run_id)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    started = time.perf_counter()
    jobs = [(directory, vms, fmt, k, shards) for k in range(shards)]
    counts: Counter = Counter()
    files = []
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        for path, shard_counts, n, secs in pool.imap_unordered(_write_shard, jobs):
            print(f"  wrote {os.path.basename(path)}: {n} records in {secs:.1f}s", file=sys.stderr, flush=True)
            files.append(path)
            counts.update(dict(shard_counts))
    # The manifest exactly as WriteSnapshot makes it (no failed accounts: no status events needed).
    write_manifest(directory, ctx, fmt, files, sorted(counts.items()), [])
    seconds = time.perf_counter() - started
    return directory, validate_snapshot(directory), seconds


def snapshot_for(root: str, vms: int, fmt: str) -> tuple[str, dict, float | None]:
    """A valid cached snapshot under root for (vms, fmt), else a newly generated one."""
    from transforms.common.snapshot_format import SnapshotError
    from transforms.sources.snapshot import validate_snapshot
    directory = os.path.join(root, _context(vms, fmt).run_id)
    if os.path.exists(os.path.join(directory, "manifest.json")):
        try:
            manifest = validate_snapshot(directory)
            if manifest["counts"].get("vm") == vms:
                print(f"reusing the snapshot in {directory}", file=sys.stderr)
                return directory, manifest, None
        except SnapshotError as exc:
            print(f"regenerating {directory}: {exc}", file=sys.stderr)
    print(f"generating a {vms}-VM {fmt} snapshot in {directory} ({SHARDS} shards, 2 processes)", file=sys.stderr)
    return generate(root, vms, fmt)


# -- the measurements (each runs in its own child process) -------------------
def _files(directory: str, manifest: dict) -> list[str]:
    return [posixpath.join(directory, f["path"]) for f in manifest["files"]]


def measure_ceiling(directory: str, manifest: dict, parse_json: bool) -> dict:
    n = 0
    started = time.perf_counter()
    if manifest["format"] == "avro":
        import fastavro
        for path in _files(directory, manifest):
            with open(path, "rb") as fh:
                if parse_json:
                    for r in fastavro.reader(fh):
                        json.loads(cast(dict, r)["payload"])  # our schema's records: dicts
                        n += 1
                else:
                    for _ in fastavro.reader(fh):
                        n += 1
    else:
        import pyarrow.parquet as pq
        for path in _files(directory, manifest):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=1000):
                for r in batch.to_pylist():
                    if parse_json:
                        json.loads(r["payload"])
                    n += 1
    return {"records": n, "seconds": time.perf_counter() - started}


def _count_into(name: str):
    import apache_beam as beam
    from apache_beam.metrics import Metrics

    def record(n: int) -> None:
        Metrics.counter(NS, name).inc(n)

    class Discard(beam.PTransform):
        def expand(self, pcoll):
            return (pcoll | "Count" >> beam.combiners.Count.Globally()
                    | "Record" >> beam.Map(record))
    return Discard()


def dummy_config(work: str):
    from pipeline.config import parse_config
    return parse_config({
        "cloudforet": {"endpoint": "127.0.0.1:1", "domain_id": "domain-bench", "workspace_id": "workspace-bench",
                       "auth": {"token_env": "BENCH_UNUSED_TOKEN"}},
        "metric_store": {"path": os.path.join(work, "metrics")},
        "report": {"path": os.path.join(work, "report.json")},
    }, source="benchmark")


def build_replay(p, directory: str, manifest: dict, work: str, flatten_check: bool = False) -> None:
    import apache_beam as beam

    from pipeline.graph import derive, read_snapshot
    from transforms.sources.snapshot import context_of
    config, ctx = dummy_config(work), context_of(manifest)
    read, _ = read_snapshot(p, directory, manifest)
    derived = derive(read, config, ctx)
    # Resources are one PCollection per side, each sink applied to each side.
    sides = [pc for _, pc in derived.sides]
    outputs = [("resources", pc) for pc in sides] + [
        ("costs", derived.costs), ("metric_batches", derived.points), ("status", read.status)]
    for k, (name, pcoll) in enumerate(outputs):
        pcoll | f"Discard_{name}_{k}" >> _count_into(name)
    (tuple(derived.dead_letters) | "AllDeadLetters" >> beam.Flatten()
     | "Discard_dead_letters" >> _count_into("dead_letters"))
    if flatten_check:  # the outputs flattened and counted again: must equal the sum of the counts above
        ((*sides, derived.costs, derived.points) | "AllOutputs" >> beam.Flatten()
         | "Discard_all" >> _count_into("outputs"))


def measure_replay(directory: str, manifest: dict, beam_args: list[str], profile: str | None = None,
                   flatten_check: bool = False) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    work = tempfile.mkdtemp(prefix="replay-bench-work-")
    try:
        profiler = None
        if profile:
            import cProfile
            profiler = cProfile.Profile()
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        p = beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions(beam_args))
        build_replay(p, directory, manifest, work, flatten_check)
        result = p.run()
        result.wait_until_finish()
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        seconds = time.perf_counter() - started
        counters: dict = {}
        for c in result.metrics().query()["counters"]:
            key = f"{c.key.metric.namespace}/{c.key.metric.name}"
            counters[key] = counters.get(key, 0) + (c.committed or 0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"records": counters.get("snapshot/records_replayed", 0), "seconds": seconds, "counters": counters}


def child_main(args: argparse.Namespace) -> None:
    from transforms.sources.snapshot import load_manifest
    manifest = load_manifest(args.snapshot)
    if args.child == "ceiling":
        out = measure_ceiling(args.snapshot, manifest, parse_json=False)
    elif args.child == "ceiling_json":
        out = measure_ceiling(args.snapshot, manifest, parse_json=True)
    else:
        beam_args = [] if args.child == "replay_in_memory" else [
            "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
        out = measure_replay(args.snapshot, manifest, beam_args, args.profile, args.flatten_check)
    out["rss_self_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB
    out["rss_children_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MIB
    print("RESULT " + json.dumps(out))


def run_child(what: str, directory: str, profile: str | None = None, timeout: float = 3600,
              flatten_check: bool = False) -> dict:
    args = [sys.executable, "-m", "benchmarks", "replay", "--child", what, "--snapshot", directory]
    if flatten_check:
        args.append("--flatten-check")
    if profile:
        args += ["--profile", profile]
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}",
                "process_seconds": time.perf_counter() - started}
    out = json.loads(lines[-1][len("RESULT "):])
    out["process_seconds"] = time.perf_counter() - started
    return out


# -- the report --------------------------------------------------------------
LABELS = {
    "ceiling": "ceiling: fastavro read",
    "ceiling_json": "fastavro read + json.loads(payload)",
    "replay_in_memory": "replay: FnApiRunner in_memory",
    "replay_multi_processing": "replay: FnApiRunner 2 processes",
}


def print_table(rows: dict, fmt: str) -> None:
    labels = dict(LABELS)
    if fmt == "parquet":
        labels["ceiling"], labels["ceiling_json"] = "ceiling: pyarrow read", "pyarrow read + json.loads(payload)"
    ceiling = rows.get("ceiling", {})
    ceiling_rate = ceiling["records"] / ceiling["seconds"] if ceiling.get("seconds") else None
    print(f"\n{'what':38} | {'records':>8} | {'seconds':>8} | {'records/s':>10} | {'ratio to ceiling':>16} | "
          f"{'peak RSS MiB (self/children)':>28}")
    print("-" * 124)
    for key, r in rows.items():
        if "error" in r:
            print(f"{labels[key]:38} | failed: {r['error'].strip().splitlines()[-1][:70]}")
            continue
        rate = r["records"] / r["seconds"]
        ratio = f"{rate / ceiling_rate:.3f}" if ceiling_rate else "-"
        rss = f"{r['rss_self_mib']:.0f} / {r['rss_children_mib']:.0f}"
        print(f"{labels[key]:38} | {r['records']:>8} | {r['seconds']:>8.2f} | {rate:>10.0f} | {ratio:>16} | {rss:>28}")
    for key, r in rows.items():
        c = r.get("counters")
        if not c:
            continue
        parts = sum(c.get(f"{NS}/{k}", 0) for k in ("resources", "costs", "metric_batches"))
        print(f"  {labels[key]}: {c.get(f'{NS}/resources', 0)} resources, {c.get(f'{NS}/costs', 0)} cost records, "
              f"{c.get(f'{NS}/metric_batches', 0)} metric batches ({c.get('metrics/points_extracted', 0)} points), "
              f"{c.get(f'{NS}/status', 0)} status events, {c.get(f'{NS}/dead_letters', 0)} dead letters, "
              f"{c.get(f'{NS}/outputs', parts)} outputs discarded; {r['process_seconds']:.1f}s with process start")
        if f"{NS}/outputs" in c and c[f"{NS}/outputs"] != parts:
            print(f"  MISMATCH: the flattened outputs count {c.get(f'{NS}/outputs', 0)}, "
                  f"resources + costs + metric batches counted one by one are {parts}")


def _area(filename: str) -> str:
    """Where a profiled function lives, for a per-area split of the time."""
    if "apache_beam/runners" in filename or "apache_beam/coders" in filename:
        return "Beam runner: bundles, coders, data plane"
    if "apache_beam" in filename:
        return "Beam other: transforms, options, construction"
    if filename.startswith(str(ROOT)) and "site-packages" not in filename:
        return "project: " + os.path.relpath(filename, ROOT)
    if "/json/" in filename:
        return "json (stdlib)"
    for name in ("fastavro", "pyarrow", "inspect.py"):
        if name in filename:
            return name
    return "other (builtins, stdlib)" if filename == "~" or "/lib/python3" in filename else "other"


def print_profile(path: str, top: int = 30) -> None:
    import pstats
    stats = pstats.Stats(path)
    areas: Counter = Counter()
    # typeshed's pstats.Stats does not declare .stats (set by load_stats)
    for (filename, _, _), (_, _, tottime, _, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if filename == "~" and callers:  # a builtin (dict.get, round, ...): charge the callers' areas
            for (caller_file, _, _), caller_stats in callers.items():
                areas[_area(caller_file)] += caller_stats[2]
        else:
            areas[_area(filename)] += tottime
    total = sum(areas.values()) or 1.0
    print("\nself time by area (cProfile tottime; builtins and compiled Cython/C code count in their caller):")
    for area, secs in areas.most_common(14):
        print(f"  {area:55} {secs:7.2f}s {100 * secs / total:5.1f}%")
    stats.strip_dirs()
    for order in ("tottime", "cumulative"):
        print(f"\ncProfile of the in_memory replay, top {top} by {order}:")
        stats.sort_stats(order).print_stats(top)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks replay", description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=100_000)
    ap.add_argument("--format", choices=["avro", "parquet"], default="avro")
    ap.add_argument("--keep", help="keep (and reuse) the generated snapshot under this directory")
    ap.add_argument("--skip-multi", action="store_true", help="skip the 2-process replay row")
    ap.add_argument("--profile", help="also profile the in_memory replay with cProfile into this file")
    ap.add_argument("--flatten-check", action="store_true",
                    help="also Flatten all outputs and count them again (adds a copy in the local runner)")
    ap.add_argument("--child", choices=sorted(LABELS), help=argparse.SUPPRESS)
    ap.add_argument("--snapshot", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_main(args)
        return

    root = args.keep or tempfile.mkdtemp(prefix="nutanix-bench-replay-")
    os.makedirs(root, exist_ok=True)
    try:
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"load average {os.getloadavg()[0]:.2f}")
        directory, manifest, gen_seconds = snapshot_for(root, args.vms, args.format)
        size = sum(f["bytes"] for f in manifest["files"])
        records = sum(manifest["counts"].values())
        made = f"generated in {gen_seconds:.1f}s" if gen_seconds is not None else "reused"
        print(f"snapshot: {directory}: {records} records {manifest['counts']}, {len(manifest['files'])} "
              f"{args.format} files, {size / 1e6:.1f} MB, {made}")
        rows = {}
        for what in ("ceiling", "ceiling_json", "replay_in_memory", "replay_multi_processing"):
            if what == "replay_multi_processing" and args.skip_multi:
                continue
            print(f"measuring {LABELS[what]} ...", file=sys.stderr, flush=True)
            rows[what] = run_child(what, directory, flatten_check=args.flatten_check)
            r = rows[what]
            if "error" not in r and r["records"] != records:
                r["error"] = f"read {r['records']} records, the manifest counts {records}"
        print_table(rows, args.format)
        if args.profile:
            print(f"\nprofiling the in_memory replay into {args.profile} ...", file=sys.stderr, flush=True)
            r = run_child("replay_in_memory", directory, profile=args.profile)
            if "error" in r:
                print(f"profile run failed: {r['error']}")
            else:
                print(f"\nprofiled run: {r['records']} records in {r['seconds']:.1f}s (profiler overhead included)")
                print_profile(args.profile)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
