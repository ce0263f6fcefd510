"""Read side of the metric store the pipeline writes (``transforms.sinks.files.metric_store``).

Only the day partitions a query spans are listed and opened; the scan asks
pyarrow for four columns and filters on date, metric, resource_id and time,
so row groups of other metrics and resources are skipped by their statistics
(rows are sorted by metric, resource_id, timestamp). A 30-day query over 1,000
VMs therefore never loads the whole store.

Overlapping run windows can store the same (resource_id, metric, timestamp)
twice: each point counts once, with the value of the greatest run_id.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas.metrics import METRIC_CATALOG
from schemas.parquet import METRIC_POINT

from .errors import PluginError, internal, invalid
from .storage import StoreFiles

DAY_PREFIX = "date="
DATASET_SCHEMA = METRIC_POINT.append(pa.field("date", pa.string()))
HIVE = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")

# metric -> (display name, group). Units come from the store (what the pipeline wrote).
CATALOG: dict[str, tuple[str, str]] = {m: (spec.display_name, spec.group) for m, spec in METRIC_CATALOG.items()}
STATS = ("AVERAGE", "AVG", "MAX", "MIN", "SUM")
AUTO_PERIODS = (300, 600, 1800, 3600, 10800, 21600, 43200, 86400)
MAX_AUTO_LABELS = 500
MAX_CELLS = 5_000_000  # resources x labels in one answer


@dataclass
class Series:
    """Bucket start times (epoch ms) and per-resource values (NaN: no point in the bucket)."""

    labels_ms: list[int]
    values: dict[str, np.ndarray]


def auto_period(span_s: float) -> int:
    """The smallest period giving at most MAX_AUTO_LABELS points (the store holds 5-minute points)."""
    for p in AUTO_PERIODS:
        if span_s / p <= MAX_AUTO_LABELS:
            return p
    return int(math.ceil(span_s / MAX_AUTO_LABELS / 86400) * 86400)


def _day(ts_ms: int) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).date()


class MetricStore:
    """Queries over ``{root}/date=YYYY-MM-DD/*.parquet``; re-lists directories per query (new runs appear)."""

    def __init__(self, root: str, fs: pafs.FileSystem | None = None) -> None:
        """``root``: a local path or a URI the pipeline's writers accept (gs://, s3://, file://, ...)."""
        self.store = StoreFiles(root, fs)
        self.root = self.store.root

    def exists(self) -> bool:
        return self.store.exists()

    # -- files --------------------------------------------------------------
    def days(self) -> list[str]:
        """Day partitions present, oldest first."""
        names = [e.base_name for e in self.store.dirs(self.store.base, DAY_PREFIX)]
        return sorted(n[len(DAY_PREFIX):] for n in names)

    def files(self, days: list[str]) -> list[str]:
        out: list[str] = []
        for d in days:
            out.extend(e.path for e in self.store.files(self.store.path(DAY_PREFIX + d))
                       if e.base_name.endswith(".parquet"))
        return sorted(out)

    def _scan(self, days: list[str], columns: list[str], where: ds.Expression) -> pa.Table:
        files = self.files(days)
        if not files:
            return DATASET_SCHEMA.empty_table().select(columns)
        try:
            dataset = ds.dataset(files, schema=DATASET_SCHEMA, format="parquet", partitioning=HIVE,
                                 partition_base_dir=self.store.base, filesystem=self.store.fs)
            return dataset.to_table(columns=columns, filter=ds.field("date").isin(days) & where)
        except (pa.ArrowException, OSError) as exc:
            raise self._explain(files, exc) from exc

    def _explain(self, files: list[str], exc: Exception) -> PluginError:
        """INTERNAL naming the first file that cannot be read (a bad file must not look like no data)."""
        for path in files:
            try:
                with self.store.fs.open_input_file(path) as fh:
                    schema = pq.ParquetFile(fh).schema_arrow
                missing = [f.name for f in METRIC_POINT if f.name not in schema.names]
                if missing:
                    return internal(f"metric store file {path} lacks columns {missing}")
            except Exception as bad:  # noqa: BLE001
                return internal(f"metric store file {path} is unreadable: {bad}")
        return internal(f"metric store scan failed: {exc}")

    # -- queries ------------------------------------------------------------
    def metrics_of(self, resource_id: str, lookback_days: int = 2) -> list[tuple[str, str]]:
        """(metric, unit) pairs stored for a resource in the newest ``lookback_days`` day partitions."""
        days = self.days()[-lookback_days:]
        table = self._scan(days, ["metric", "unit"], ds.field("resource_id") == resource_id)
        pairs = {(m, u) for m, u in zip(table["metric"].to_pylist(), table["unit"].to_pylist())}
        return sorted(pairs)

    def series(self, resource_ids: list[str], metric: str, start_ms: int, end_ms: int,
               period_s: int, stat: str) -> Series:
        """Points of ``metric`` in [start, end) aggregated per ``period_s`` bucket with ``stat``."""
        if end_ms <= start_ms:
            raise invalid("start must be before end")
        if stat not in STATS:
            raise invalid(f"stat {stat!r} is not supported; use one of {list(STATS)}")
        period_ms = period_s * 1000
        n_labels = -(-(end_ms - start_ms) // period_ms)
        if len(resource_ids) * n_labels > MAX_CELLS:
            raise invalid(f"{len(resource_ids)} resources x {n_labels} points exceeds {MAX_CELLS}; "
                          "use a longer period or fewer resources")
        first, last = _day(start_ms), _day(end_ms - 1)
        wanted = {(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
        days = [d for d in self.days() if d in wanted]
        if not days or not resource_ids:
            return Series([], {})
        ts_type = pa.timestamp("ms", tz="UTC")
        where = ((ds.field("metric") == metric)
                 & ds.field("resource_id").isin(sorted(set(resource_ids)))
                 & (ds.field("timestamp") >= pa.scalar(start_ms, ts_type))
                 & (ds.field("timestamp") < pa.scalar(end_ms, ts_type)))
        table = self._scan(days, ["resource_id", "timestamp", "value", "run_id"], where)
        if table.num_rows == 0:
            return Series([], {})
        return _aggregate(table, start_ms, period_ms, n_labels, stat)


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    encoded = column.combine_chunks().dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def _aggregate(table: pa.Table, start_ms: int, period_ms: int, n_labels: int, stat: str) -> Series:
    rid, names = _codes(table["resource_id"])
    ts = table["timestamp"].cast(pa.int64()).to_numpy() - start_ms
    vals = table["value"].to_numpy()
    run, run_names = _codes(table["run_id"])
    if len(run_names) > 1:  # overlapping runs: keep each point once, from the greatest run_id
        rank = np.argsort(np.argsort(np.array(run_names, dtype=object)))[run]
        key = rid * (int(ts.max()) + 1) + ts
        order = np.lexsort((-rank, key))
        ks = key[order]
        keep = order[np.concatenate(([True], ks[1:] != ks[:-1]))]
        rid, ts, vals = rid[keep], ts[keep], vals[keep]
    n_res = len(names)
    cell = rid * n_labels + ts // period_ms
    size = n_res * n_labels
    count = np.bincount(cell, minlength=size)
    if stat in ("AVERAGE", "AVG", "SUM"):
        out: np.ndarray = np.bincount(cell, weights=vals, minlength=size)
        if stat != "SUM":
            with np.errstate(invalid="ignore", divide="ignore"):
                out = out / count
    else:
        ufunc = np.maximum if stat == "MAX" else np.minimum
        out = np.full(size, -np.inf if stat == "MAX" else np.inf)
        ufunc.at(out, cell, vals)
    out[count == 0] = np.nan
    grid = out.reshape(n_res, n_labels)
    labels = [start_ms + i * period_ms for i in range(n_labels)]
    return Series(labels, {names[i]: grid[i] for i in range(n_res)})
