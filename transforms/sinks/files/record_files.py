"""Records -> Avro or Parquet files, one set per bundle, staged until committed.

Written like Beam's own file sinks (``iobase.WriteImpl``): each bundle writes
its own staging files and hands on their names, and one final step moves the
staged files of the bundles that succeeded into place. A retried bundle's
staging files are never committed, and the final step removes them.

Unlike ``WriteToAvro``, the writer takes the pipeline's elements themselves
(``to_records`` turns one into its records, of one or more file kinds) and
counts what it writes: archiving a VM and its stats is then one step per VM,
not a step per record and per count, plus the sink's own dozen stages.
"""
from __future__ import annotations

import posixpath
import uuid
from collections import Counter
from typing import Any, Callable, Iterable

import apache_beam as beam
import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

STAGING = "_staging"
EXTENSIONS = {"avro": ".avro", "parquet": ".parquet"}
PARQUET_ROWS_PER_GROUP = 5_000
# fastavro's default block is 16 kB, two or three records of a VM's size: some 7,500
# compressions and writes per 10k VMs. 1 MiB blocks are still small beside a page.
AVRO_BLOCK_BYTES = 1 << 20

# element -> [(file kind, record)]; each record counts once for (record["account"], record["kind"])
ToRecords = Callable[[Any], Iterable[tuple[str, dict]]]


def _create(path: str):
    return FileSystems.create(path, mime_type="application/octet-stream",
                              compression_type=CompressionTypes.UNCOMPRESSED)


class _AvroFile:
    def __init__(self, path: str, schema: dict, codec: str):
        self.fh = _create(path)
        self.writer = fastavro.write.Writer(self.fh, schema, codec, sync_interval=AVRO_BLOCK_BYTES)

    def write(self, record: dict) -> None:
        self.writer.write(record)

    def close(self) -> None:
        self.writer.flush()
        self.fh.close()


class _ParquetFile:
    def __init__(self, path: str, schema: pa.Schema):
        self.fh = _create(path)
        self.schema = schema
        self.writer = pq.ParquetWriter(self.fh, schema)
        self.rows: list[dict] = []

    def write(self, record: dict) -> None:
        self.rows.append(record)
        if len(self.rows) >= PARQUET_ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()
        self.fh.close()


class WriteRecordFiles(beam.DoFn):
    """Elements -> staged files; at the end of each bundle, one
    ``{"kind", "path", "counts": [((account, record kind), n)]}`` per file written."""

    def __init__(self, directory: str, fmt: str, to_records: ToRecords, avro_schema: dict | None = None,
                 parquet_schema: pa.Schema | None = None, codec: str = "snappy", namespace: str = "snapshot"):
        if fmt not in EXTENSIONS:
            raise ValueError(f"format must be one of {sorted(EXTENSIONS)}")
        self.directory, self.fmt, self.to_records, self.codec = directory, fmt, to_records, codec
        self.avro_schema, self.parquet_schema = avro_schema, parquet_schema
        self.written = Metrics.counter(namespace, "records_written")

    def setup(self):
        self.parsed_schema = fastavro.parse_schema(self.avro_schema) if self.fmt == "avro" else None

    def start_bundle(self):
        self.files: dict[str, tuple[str, Any]] = {}
        self.counts: dict[str, Counter] = {}

    def process(self, element: Any) -> None:
        for kind, record in self.to_records(element):
            entry = self.files.get(kind)
            if entry is None:
                entry = self.files[kind] = self._open(kind)
                self.counts[kind] = Counter()
            entry[1].write(record)
            self.counts[kind][(record["account"], record["kind"])] += 1

    def finish_bundle(self):
        files, self.files = self.files, {}
        for kind, (path, f) in sorted(files.items()):
            f.close()
            counts = self.counts[kind]
            self.written.inc(sum(counts.values()))
            yield GlobalWindows.windowed_value({"kind": kind, "path": path, "counts": sorted(counts.items())})

    def _open(self, kind: str) -> tuple[str, Any]:
        path = posixpath.join(self.directory, STAGING, f"{kind}-{uuid.uuid4().hex}{EXTENSIONS[self.fmt]}")
        if self.fmt == "avro":
            return path, _AvroFile(path, self.parsed_schema, self.codec)
        return path, _ParquetFile(path, self.parquet_schema)


def commit_record_files(directory: str, fmt: str, staged: list[dict]) -> tuple[list[str], list]:
    """Staged files of successful bundles -> ``entities-<kind>-NNNNN-of-MMMMM`` in
    ``directory``; returns (their paths, [((account, record kind), n)] summed).

    Safe to repeat: a file already moved is not moved again. Entity files of an
    earlier attempt of the same snapshot that this one did not write are
    removed, and so is every staged file, committed or not.
    """
    ext = EXTENSIONS[fmt]
    by_kind: dict[str, list[dict]] = {}
    for s in staged:
        by_kind.setdefault(s["kind"], []).append(s)
    paths: list[str] = []
    counts: Counter = Counter()
    for kind, files in sorted(by_kind.items()):
        for i, s in enumerate(sorted(files, key=lambda f: f["path"])):
            target = posixpath.join(directory, f"entities-{kind}-{i:05d}-of-{len(files):05d}{ext}")
            if FileSystems.exists(s["path"]):
                if FileSystems.exists(target):
                    FileSystems.delete([target])
                FileSystems.rename([s["path"]], [target])
            paths.append(target)
            for key, n in s["counts"]:
                counts[tuple(key)] += n
    keep = set(paths)
    staging = posixpath.join(directory, STAGING)
    stale = [m.path for pattern in (f"entities-*{ext}", f"{STAGING}/*")
             for m in FileSystems.match([posixpath.join(directory, pattern)])[0].metadata_list
             if m.path not in keep]
    if stale:
        FileSystems.delete(stale)
    if FileSystems.exists(staging):  # a local directory (object stores have none left)
        FileSystems.delete([staging])
    return paths, sorted(counts.items())
