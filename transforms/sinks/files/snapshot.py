"""WriteSnapshot: archive what Prism answered (the format: ``transforms.common.snapshot_format``)."""
from __future__ import annotations

import posixpath
from collections import Counter
from datetime import datetime
from typing import Any, Iterable

import apache_beam as beam
from apache_beam import pvalue

from schemas.parquet import SNAPSHOT_ENTITY, SNAPSHOT_SCHEMA_VERSION
from transforms.common.files import write_json_atomically
from transforms.common.snapshot_format import (
    API_VERSION,
    AVRO_CODECS,
    FORMATS,
    avro_schema,
    file_digest,
    manifest_path,
    to_record,
)
from transforms.elements import AccountEvent, InfraEntity, SinkResult, VmWithStats
from transforms.settings import RunContext
from transforms.sinks.files.formats import AvroSink, FileSink, ParquetSink
from transforms.sinks.files.write_files import FileLayout, StageFiles, commit_files
from transforms.sources.prism import STATS


def write_manifest(snapshot_dir: str, ctx: RunContext, fmt: str, files: list[str], counts: list,
                   statuses: list) -> list[dict]:
    """The manifest of committed entity files (written last, atomically); returns
    one result per account."""
    per_account: dict[str, dict] = {}
    for (account, kind), n in counts:
        per_account.setdefault(account, {})[kind] = n
    accounts: dict[str, dict] = {}
    for ev in statuses:
        a = accounts.setdefault(ev["account"], {"complete": True, "error": None})
        if ev["event"] == "failed":
            a.update(complete=False, error=ev.get("error"))
        elif ev["event"] == "page_failed":
            a["complete"] = False
        elif ev["event"] == "api":  # v4 answers are archived in the v3 form (transforms/sources/v4_shapes.py)
            a.update(api=ev.get("api", "v3"), api_reason=ev.get("text", ""))
    for account in per_account:
        accounts.setdefault(account, {"complete": True, "error": None})
    entries = []
    for path in sorted(files):
        size, digest = file_digest(path)
        entries.append({"path": posixpath.basename(path), "bytes": size, "sha256": digest})
    manifest: dict[str, Any] = {
        "snapshot_id": ctx.run_id,
        "collected_at": ctx.collected_at,
        "api_version": API_VERSION,  # the payloads' form; accounts[].api: the API each was read with
        "format": fmt,
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "stats_window": {"start_ms": ctx.stats_start_ms, "end_ms": ctx.stats_end_ms,
                         "interval_s": ctx.stats_interval_s},
        "accounts": {name: {**accounts[name], "counts": per_account.get(name, {})}
                     for name in sorted(accounts)},
        "files": entries,
    }
    total: Counter[str] = Counter()
    for (_, kind), n in counts:
        total[kind] += n
    manifest["counts"] = dict(sorted(total.items()))
    write_json_atomically(manifest_path(snapshot_dir), manifest)
    return [{"sink": "snapshot", "account": name, "records": sum(a["counts"].values())}
            for name, a in manifest["accounts"].items()]


class EntityFiles(FileLayout[str]):
    """``<snapshot>/entities-<kind>-NNNNN-of-MMMMM.<ext>``, staged in ``<snapshot>/_staging``.

    A commit replaces every entity file of an earlier attempt of the same snapshot
    that it did not write, of whatever kind."""

    def __init__(self, fmt: str):
        super().__init__()
        self.ext = FORMATS[fmt]

    def directory(self, destination: str) -> str:
        return ""

    def name(self, destination: str, index: int, total: int) -> str:
        return f"entities-{destination}-{index:05d}-of-{total:05d}{self.ext}"

    def replaces(self, directory: str, name: str) -> bool:
        return name.startswith("entities-") and name.endswith(self.ext)

    def swept(self):
        return ("",)


def entity_sink(fmt: str, codec: str = "snappy") -> FileSink:
    if fmt == "avro":
        return AvroSink(avro_schema(), codec)
    return ParquetSink(SNAPSHOT_ENTITY)


def record_kind(record: dict) -> tuple[tuple[str, str], int]:
    """What a snapshot record counts for: (account, entity kind)."""
    return (record["account"], record["kind"]), 1


class _CommitSnapshotFn(beam.DoFn):
    """Staged entity files of successful bundles -> entity files in place, then the manifest."""

    def __init__(self, snapshot_dir: str, ctx: RunContext, fmt: str):
        self.snapshot_dir, self.ctx, self.fmt = snapshot_dir, ctx, fmt

    def process(self, staged: list[dict], statuses: list) -> Iterable[dict]:
        files, counts = commit_files(self.snapshot_dir, EntityFiles(self.fmt), staged)
        yield from write_manifest(self.snapshot_dir, self.ctx, self.fmt, files, counts, statuses)


AsRead = tuple[beam.PCollection[VmWithStats], beam.PCollection[InfraEntity], beam.PCollection[AccountEvent]]


class WriteSnapshot(beam.PTransform[AsRead, beam.PCollection[SinkResult]]):
    """ReadFromPrism's ``(vms_as_read, infra_as_read, status)`` -> entity files +
    manifest under ``<root>/<run_id>/``; one SinkResult per account.

    Archives what was read, repeats included: every VM as listed with its page's
    stats, and every cluster and host.
    """

    def __init__(self, root: str, fmt: str, ctx: RunContext, codec: str = "snappy"):
        super().__init__()
        if fmt not in FORMATS:
            raise ValueError(f"snapshot format must be one of {sorted(FORMATS)}")
        if codec not in AVRO_CODECS:
            raise ValueError(f"snapshot codec must be one of {sorted(AVRO_CODECS)}")
        self.root, self.fmt, self.ctx, self.codec = root, fmt, ctx, codec

    def expand(self, read: AsRead) -> beam.PCollection[SinkResult]:
        vms_as_read, infra_as_read, status = read
        ctx = self.ctx
        collected_ms = int(datetime.fromisoformat(ctx.collected_at.replace("Z", "+00:00")).timestamp() * 1000)
        snapshot_dir = posixpath.join(self.root, ctx.run_id)
        as_records = _AsRecords(ctx.run_id, collected_ms)
        layout, sink = EntityFiles(self.fmt), entity_sink(self.fmt, self.codec)
        # One writer per input: a Flatten of both would make the local runner
        # hold every record in memory before writing any.
        staged = (
            vms_as_read | "WriteVmFiles" >> beam.ParDo(StageFiles(
                snapshot_dir, layout, sink, as_records.vm, record_kind, namespace="snapshot")),
            infra_as_read | "WriteInfraFiles" >> beam.ParDo(StageFiles(
                snapshot_dir, layout, sink, as_records.infra, record_kind, namespace="snapshot")),
        ) | "StagedFiles" >> beam.Flatten()
        return (staged
                | "AllStaged" >> beam.combiners.ToList()
                | "Commit" >> beam.ParDo(_CommitSnapshotFn(snapshot_dir, ctx, self.fmt),
                                         pvalue.AsList(status)))


class _AsRecords:
    """Read elements -> (file kind, snapshot record) pairs (picklable, bound to the run)."""

    def __init__(self, snapshot_id: str, collected_ms: int):
        self.sid, self.ms = snapshot_id, collected_ms

    def vm(self, element: VmWithStats) -> list[tuple[str, dict]]:
        (account, uuid), (base_url, entity, stats) = element
        out = [("vm", to_record(self.sid, self.ms, account, "vm", uuid, base_url, entity))]
        if stats is not None:
            out.append((STATS, to_record(self.sid, self.ms, account, STATS, uuid, base_url, stats)))
        return out

    def infra(self, element: InfraEntity) -> list[tuple[str, dict]]:
        (account, kind, uuid), (base_url, entity) = element
        return [("infra", to_record(self.sid, self.ms, account, kind, uuid, base_url, entity))]
