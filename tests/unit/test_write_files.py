"""The one file engine (transforms/sinks/files/write_files.py) on a filesystem that only Beam knows.

The stores accept any Beam filesystem path (gs://, hdfs://, ...): ``scratch://`` below is
such a filesystem, registered with Beam the way its own are (a ``FileSystem`` subclass
with a scheme), backed by a local directory so the test can look at what was written.
pyarrow's own filesystems do not know it.
"""
from __future__ import annotations

import os
import shutil

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import BeamIOError, FileMetadata
from apache_beam.io.localfilesystem import LocalFileSystem
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

PREFIX = "scratch://"
_RESULTS: dict[str, list] = {}  # the in-process runner's DoFns append here


def _collect(row, key: str) -> None:
    _RESULTS.setdefault(key, []).append(row)


def _local(path: str) -> str:
    return path[len(PREFIX):] if path.startswith(PREFIX) else path


def _locals(paths):
    return [_local(p) for p in paths]


class ScratchFileSystem(LocalFileSystem):
    """``scratch:///abs/path`` -> ``/abs/path``: a Beam filesystem of its own scheme."""

    @classmethod
    def scheme(cls):
        return "scratch"

    def mkdirs(self, path):
        return super().mkdirs(_local(path))

    def create(self, path, *args, **kwargs):
        return super().create(_local(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
        return super().open(_local(path), *args, **kwargs)

    def exists(self, path):
        return super().exists(_local(path))

    def size(self, path):
        return super().size(_local(path))

    def last_updated(self, path):
        return super().last_updated(_local(path))

    def checksum(self, path):
        return super().checksum(_local(path))

    def metadata(self, path):
        m = super().metadata(_local(path))
        return FileMetadata(PREFIX + m.path, m.size_in_bytes, m.last_updated_in_seconds)

    def rename(self, sources, destinations):
        return super().rename(_locals(sources), _locals(destinations))

    def copy(self, sources, destinations):
        return super().copy(_locals(sources), _locals(destinations))

    def delete(self, paths):
        missing = [p for p in paths if not os.path.exists(_local(p))]
        if missing:
            raise BeamIOError("Delete operation failed", {p: IOError(f"no file {p}") for p in missing})
        for p in _locals(paths):
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)

    def _list(self, dir_or_prefix):
        for m in super()._list(_local(dir_or_prefix)):
            yield FileMetadata(PREFIX + m.path, m.size_in_bytes, m.last_updated_in_seconds)


def _run(write, elements, key):
    _RESULTS.pop(key, None)
    with beam.Pipeline(runner=FnApiRunner()) as p:
        _ = p | beam.Create(elements, reshuffle=False) | write | beam.Map(_collect, key)
    return _RESULTS.pop(key, [])


def _points(account: str, stamps: list[int]) -> dict:
    n = len(stamps)
    return {"account": account, "points": pa.table({
        "resource_id": [f"vm-{i}" for i in range(n)], "metric": ["cpu.utilization"] * n,
        "timestamp_ms": pa.array(stamps, pa.int64()), "value": [float(i) for i in range(n)],
        "unit": ["Percent"] * n})}


def test_the_metric_store_is_written_to_a_filesystem_only_beam_knows(tmp_path):
    from transforms.sinks.files.metric_store import WriteToMetricStore
    day = 1_764_288_000_000  # 2025-11-28T00:00:00Z
    batches = [_points("pc-a", [day + 1000, day + 2000]), _points("pc-b", [day + 3000])]
    root = PREFIX + str(tmp_path / "metrics")
    for _ in range(2):  # the same run again replaces its own files
        results = _run(WriteToMetricStore(root, "run-1"), batches, "metrics")
        assert sorted((r["account"], r["points"]) for r in results) == [("pc-a", 2), ("pc-b", 1)]
        files = sorted(p.relative_to(tmp_path / "metrics").as_posix() for p in (tmp_path / "metrics").rglob("*")
                       if p.is_file())
        assert files == ["date=2025-11-28/run-1-00000.parquet"]
    table = pq.read_table(tmp_path / "metrics" / "date=2025-11-28" / "run-1-00000.parquet")
    assert sorted(table["account"].to_pylist()) == ["pc-a", "pc-a", "pc-b"]
    assert not (tmp_path / "metrics" / "_staging" / "run-1").exists()


def test_the_cost_store_is_written_to_a_filesystem_only_beam_knows_and_a_day_is_replaced_whole(tmp_path):
    from transforms.sinks.files.cost_store import WriteToCostStore

    def cost(account, resource, day="2026-11-28"):
        return {"provider": "nutanix", "billed_date": day, "cost": 1.5, "usage_quantity": 2.0, "usage_unit": "Hours",
                "product": "vm", "usage_type": "vcpu", "resource": resource, "region_code": "c1", "tags": {},
                "additional_info": {"Currency": "USD"}, "data_source_id": "ds", "account": account}

    root = PREFIX + str(tmp_path / "costs")
    _run(WriteToCostStore(root, "run-1"), [cost("pc-a", "vm-1"), cost("pc-a", "vm-2")], "costs")
    results = _run(WriteToCostStore(root, "run-2"), [cost("pc-a", "vm-3")], "costs")
    assert results == [{"sink": "cost_store", "account": "pc-a", "records": 1}]
    partition = tmp_path / "costs" / "billed_date=2026-11-28" / "account=pc-a"
    assert sorted(p.name for p in partition.iterdir()) == ["run-2-00000.parquet"]  # run-1's day replaced whole
    assert pq.read_table(partition / "run-2-00000.parquet")["resource"].to_pylist() == ["vm-3"]
