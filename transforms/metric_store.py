"""WriteToMetricStore: metric points -> a Parquet dataset partitioned by date.

Written like Beam's file sinks: each bundle writes staging files and emits
their names; one final step moves the staged files of successful bundles into
``date=YYYY-MM-DD/<run_id>-NNNNN.parquet`` after removing that run's older
files. A retried bundle's staging file is never committed, and re-running the
same run id replaces its files: the store never holds a point twice per run.
"""
from __future__ import annotations

import posixpath
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from typing import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from schemas.parquet import METRIC_POINT

NS = "metrics"
STAGING = "_staging"
MAX_BUFFERED_ROWS = 250_000


def filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    fs, path = pafs.FileSystem.from_uri(root) if "://" in root else (pafs.LocalFileSystem(),
                                                                     posixpath.abspath(root))
    return fs, path


def date_of(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def points_table(points: list[dict], run_id: str) -> pa.Table:
    points = sorted(points, key=lambda p: (p["metric"], p["resource_id"], p["timestamp_ms"]))
    return pa.Table.from_pydict({
        "account": [p["account"] for p in points],
        "resource_id": [p["resource_id"] for p in points],
        "region_code": [p.get("region_code", "") for p in points],
        "metric": [p["metric"] for p in points],
        "timestamp": [p["timestamp_ms"] for p in points],
        "value": [float(p["value"]) for p in points],
        "unit": [p["unit"] for p in points],
        "run_id": [run_id] * len(points),
    }, schema=METRIC_POINT)


class _StageFn(beam.DoFn):
    def __init__(self, root: str, run_id: str):
        self.root, self.run_id = root, run_id
        self.staged = Metrics.counter(NS, "points_staged")

    def setup(self):
        self.fs, self.base = filesystem(self.root)

    def start_bundle(self):
        self.buf: dict[str, list] = defaultdict(list)
        self.rows = 0

    def process(self, point: dict) -> Iterable:
        self.buf[date_of(point["timestamp_ms"])].append(point)
        self.rows += 1
        if self.rows >= MAX_BUFFERED_ROWS:
            yield from self._flush()

    def finish_bundle(self):
        for out in self._flush():
            yield GlobalWindows.windowed_value(out)

    def _flush(self) -> Iterable[dict]:
        buf, self.buf, self.rows = self.buf, defaultdict(list), 0
        for day, points in sorted(buf.items()):
            directory = posixpath.join(self.base, STAGING, self.run_id, f"date={day}")
            self.fs.create_dir(directory, recursive=True)
            path = posixpath.join(directory, f"{uuid.uuid4().hex}.parquet")
            pq.write_table(points_table(points, self.run_id), path, filesystem=self.fs,
                           compression="zstd", row_group_size=100_000)
            self.staged.inc(len(points))
            yield {"date": day, "path": path, "counts": dict(Counter(p["account"] for p in points))}


class _CommitFn(beam.DoFn):
    """All staged files of the run -> committed dataset files (idempotent)."""

    def __init__(self, root: str, run_id: str):
        self.root, self.run_id = root, run_id
        self.committed = Metrics.counter(NS, "points_written")

    def process(self, staged: list[dict]) -> Iterable[dict]:
        fs, base = filesystem(self.root)
        by_day: dict[str, list] = defaultdict(list)
        for s in staged:
            by_day[s["date"]].append(s)
        totals: Counter = Counter()
        for day, files in sorted(by_day.items()):
            directory = posixpath.join(base, f"date={day}")
            fs.create_dir(directory, recursive=True)
            prefix = f"{self.run_id}-"
            keep = set()
            for i, s in enumerate(sorted(files, key=lambda f: f["path"])):
                target = posixpath.join(directory, f"{prefix}{i:05d}.parquet")
                keep.add(target)
                # A retried commit finds its staged file already moved: fine.
                if fs.get_file_info(s["path"]).type != pafs.FileType.NotFound:
                    fs.move(s["path"], target)
                totals.update(s["counts"])
            for info in fs.get_file_info(pafs.FileSelector(directory)):
                if info.base_name.startswith(prefix) and info.path not in keep:
                    fs.delete_file(info.path)  # left by an earlier attempt of this run
        staging = posixpath.join(base, STAGING, self.run_id)
        if fs.get_file_info(staging).type != pafs.FileType.NotFound:
            fs.delete_dir(staging)
        self.committed.inc(sum(totals.values()))
        for account, n in sorted(totals.items()):
            yield {"sink": NS, "account": account, "points": n}


class WriteToMetricStore(beam.PTransform):
    """Metric points -> per-account results after the dataset is committed."""

    def __init__(self, root: str, run_id: str):
        super().__init__()
        self.root, self.run_id = root, run_id

    def expand(self, points):
        return (points
                | "Stage" >> beam.ParDo(_StageFn(self.root, self.run_id))
                | "Gather" >> beam.combiners.ToList()
                | "Commit" >> beam.ParDo(_CommitFn(self.root, self.run_id)))
