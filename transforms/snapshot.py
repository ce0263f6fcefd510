"""Snapshots: archive what Prism answered, and replay it through the same pipeline.

A snapshot is a directory ``<root>/<snapshot_id>/`` holding entity files
(Avro by default, or Parquet; ``transforms/record_files.py``) and ``manifest.json``,
written last and atomically: a snapshot without a manifest is incomplete. The
manifest lists every file with its size and SHA-256, so a truncated or corrupt
file is found before a replay writes anything.

Records keep the fields users query on as typed columns and the entity as
Prism answered it (``payload``), so nothing is lost. Credentials are never
part of a record or the manifest.
"""
from __future__ import annotations

import hashlib
import json
import posixpath
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Iterable

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from schemas import load_json_schema
from schemas.parquet import SNAPSHOT_ENTITY, SNAPSHOT_SCHEMA_VERSION
from transforms.canonical import canonical_json
from transforms.gc_tuning import tune_gc
from transforms.files import write_json_atomically
from transforms.prism_read import STATS, STATUS, account_event, first_seen
from transforms.record_files import WriteRecordFiles, commit_record_files
from transforms.settings import RunContext

MANIFEST = "manifest.json"
FORMATS = {"avro": ".avro", "parquet": ".parquet"}
AVRO_CODECS = ("snappy", "deflate", "null")
API_VERSION = "v3"
SUPPORTED_VERSIONS = (1, 2)
NS = "snapshot"


class SnapshotError(Exception):
    """A snapshot cannot be replayed; the message names the file and the problem."""


# -- records ---------------------------------------------------------------
def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def typed_columns(kind: str, uuid: str, payload: dict) -> dict:
    status, spec = _dict(payload.get("status")), _dict(payload.get("spec"))
    name = status.get("name") or spec.get("name")
    cluster = _dict(status.get("cluster_reference") or spec.get("cluster_reference"))
    power = _dict(status.get("resources")).get("power_state")
    if kind == "cluster":
        cluster = {"uuid": uuid, "name": name}
    if kind == STATS:
        name, cluster, power = None, {}, None
    as_str = lambda v: v if isinstance(v, str) else None  # noqa: E731
    return {"name": as_str(name), "cluster_uuid": as_str(cluster.get("uuid")),
            "cluster_name": as_str(cluster.get("name")), "power_state": as_str(power)}


def to_record(snapshot_id: str, collected_at_ms: int, account: str, kind: str, uuid: str, base_url: str,
              payload: Any) -> dict:
    return {"schema_version": SNAPSHOT_SCHEMA_VERSION, "snapshot_id": snapshot_id, "account": account,
            "kind": kind, "uuid": uuid, **typed_columns(kind, uuid, _dict(payload)),
            "collected_at": collected_at_ms, "api_version": API_VERSION, "base_url": base_url,
            "payload": canonical_json(payload)}


def upgrade(record: dict) -> dict:
    """Any supported schema version -> the current record shape."""
    version = record.get("schema_version")
    if version == 1:  # v1: ISO text time, payload named entity_json, no typed columns
        payload = record.get("entity_json", "")
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = {}
        return {**record, "schema_version": 2, "payload": payload, "api_version": "v3",
                **typed_columns(record.get("kind", ""), record.get("uuid", ""), _dict(parsed))}
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"schema_version {version!r} is not one this collector reads {SUPPORTED_VERSIONS}")
    return record


def avro_schema() -> dict:
    return load_json_schema("snapshot_v2.avsc")


# -- manifest --------------------------------------------------------------
def manifest_path(snapshot_dir: str) -> str:
    return posixpath.join(snapshot_dir, MANIFEST)


def _file_digest(path: str) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    with FileSystems.open(path, compression_type="uncompressed") as fh:
        while chunk := fh.read(1 << 20):
            size += len(chunk)
            h.update(chunk)
    return size, h.hexdigest()


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
    for account in per_account:
        accounts.setdefault(account, {"complete": True, "error": None})
    entries = []
    for path in sorted(files):
        size, digest = _file_digest(path)
        entries.append({"path": posixpath.basename(path), "bytes": size, "sha256": digest})
    manifest = {
        "snapshot_id": ctx.run_id,
        "collected_at": ctx.collected_at,
        "api_version": API_VERSION,
        "format": fmt,
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "stats_window": {"start_ms": ctx.stats_start_ms, "end_ms": ctx.stats_end_ms,
                         "interval_s": ctx.stats_interval_s},
        "accounts": {name: {**accounts[name], "counts": per_account.get(name, {})}
                     for name in sorted(accounts)},
        "files": entries,
    }
    total = Counter()
    for (_, kind), n in counts:
        total[kind] += n
    manifest["counts"] = dict(sorted(total.items()))
    write_json_atomically(manifest_path(snapshot_dir), manifest)
    return [{"sink": "snapshot", "account": name, "records": sum(a["counts"].values())}
            for name, a in manifest["accounts"].items()]


class _CommitSnapshotFn(beam.DoFn):
    """Staged entity files of successful bundles -> entity files in place, then the manifest."""

    def __init__(self, snapshot_dir: str, ctx: RunContext, fmt: str):
        self.snapshot_dir, self.ctx, self.fmt = snapshot_dir, ctx, fmt

    def process(self, staged: list[dict], statuses: list) -> Iterable[dict]:
        files, counts = commit_record_files(self.snapshot_dir, self.fmt, staged)
        yield from write_manifest(self.snapshot_dir, self.ctx, self.fmt, files, counts, statuses)


class WriteSnapshot(beam.PTransform):
    """ReadFromPrism's outputs -> entity files + manifest under ``<root>/<run_id>/``.

    Archives what was read, repeats included: every VM as listed with its page's
    stats (``vms_as_read``), and every cluster and host (``infra_raw``).
    """

    def __init__(self, root: str, fmt: str, ctx: RunContext, codec: str = "snappy"):
        super().__init__()
        if fmt not in FORMATS:
            raise ValueError(f"snapshot format must be one of {sorted(FORMATS)}")
        if codec not in AVRO_CODECS:
            raise ValueError(f"snapshot codec must be one of {sorted(AVRO_CODECS)}")
        self.root, self.fmt, self.ctx, self.codec = root, fmt, ctx, codec

    def expand(self, read: dict):
        ctx = self.ctx
        collected_ms = int(datetime.fromisoformat(ctx.collected_at.replace("Z", "+00:00")).timestamp() * 1000)
        snapshot_dir = posixpath.join(self.root, ctx.run_id)
        as_records = _AsRecords(ctx.run_id, collected_ms)
        writer = dict(avro_schema=avro_schema(), parquet_schema=SNAPSHOT_ENTITY, codec=self.codec)
        # One writer per input: a Flatten of both would make the local runner
        # hold every record in memory before writing any.
        staged = (
            read["vms_as_read"] | "WriteVmFiles" >> beam.ParDo(WriteRecordFiles(
                snapshot_dir, self.fmt, as_records.vm, **writer)),
            read["infra_raw"] | "WriteInfraFiles" >> beam.ParDo(WriteRecordFiles(
                snapshot_dir, self.fmt, as_records.infra, **writer)),
        ) | "StagedFiles" >> beam.Flatten()
        return (staged
                | "AllStaged" >> beam.combiners.ToList()
                | "Commit" >> beam.ParDo(_CommitSnapshotFn(snapshot_dir, ctx, self.fmt),
                                         pvalue.AsList(read[STATUS])))


class _AsRecords:
    """Read elements -> (file kind, snapshot record) pairs (picklable, bound to the run)."""

    def __init__(self, snapshot_id: str, collected_ms: int):
        self.sid, self.ms = snapshot_id, collected_ms

    def vm(self, element: tuple) -> list[tuple[str, dict]]:
        (account, uuid), (base_url, entity, stats) = element
        out = [("vm", to_record(self.sid, self.ms, account, "vm", uuid, base_url, entity))]
        if stats is not None:
            out.append((STATS, to_record(self.sid, self.ms, account, STATS, uuid, base_url, stats)))
        return out

    def infra(self, element: tuple) -> list[tuple[str, dict]]:
        (account, kind, uuid), (base_url, entity) = element
        return [("infra", to_record(self.sid, self.ms, account, kind, uuid, base_url, entity))]


# -- replay ----------------------------------------------------------------
def find_snapshots(pattern: str) -> list[str]:
    """A snapshot dir, its manifest, or a glob of either -> snapshot dirs."""
    if not any(ch in pattern for ch in "*?["):
        path = pattern.rstrip("/")
        return [posixpath.dirname(path) if posixpath.basename(path) == MANIFEST else path]
    dirs: list[str] = []
    # Beam's match lists files, not directories: also look for the manifests below.
    results = FileSystems.match([pattern, posixpath.join(pattern.rstrip("/"), MANIFEST)])
    for m in [m for r in results for m in r.metadata_list]:
        path = m.path.rstrip("/")
        if posixpath.basename(path) == MANIFEST:
            path = posixpath.dirname(path)
        elif not FileSystems.exists(manifest_path(path)):
            continue  # an entity file or an unrelated entry
        if path not in dirs:
            dirs.append(path)
    if not dirs:
        raise SnapshotError(f"no snapshot (a directory with {MANIFEST}) matches {pattern}")
    return dirs


def load_manifest(snapshot_dir: str) -> dict:
    path = manifest_path(snapshot_dir)
    if not FileSystems.exists(path):
        raise SnapshotError(f"{snapshot_dir}: no {MANIFEST}: not a snapshot, or its writing did not finish")
    try:
        with FileSystems.open(path, compression_type="uncompressed") as fh:
            manifest = json.loads(fh.read().decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path}: not valid JSON ({exc})") from None
    for key in ("snapshot_id", "collected_at", "format", "schema_version", "files", "stats_window", "accounts"):
        if key not in manifest:
            raise SnapshotError(f"{path}: the manifest lacks '{key}'")
    if manifest["format"] not in FORMATS:
        raise SnapshotError(f"{path}: unknown format {manifest['format']!r}")
    if manifest["schema_version"] not in SUPPORTED_VERSIONS:
        raise SnapshotError(f"{path}: schema_version {manifest['schema_version']} is newer than this "
                            f"collector reads {SUPPORTED_VERSIONS}: upgrade the collector")
    return manifest


def validate_snapshot(snapshot_dir: str) -> dict:
    """Checks the manifest and every file's size and SHA-256; returns the manifest."""
    manifest = load_manifest(snapshot_dir)
    if not manifest["files"]:
        raise SnapshotError(f"{snapshot_dir}: the manifest lists no entity files")
    for entry in manifest["files"]:
        path = posixpath.join(snapshot_dir, entry["path"])
        if not FileSystems.exists(path):
            raise SnapshotError(f"{path}: missing (listed in the manifest)")
        size, digest = _file_digest(path)
        if size != entry["bytes"]:
            raise SnapshotError(f"{path}: truncated or altered: {size} bytes, the manifest says {entry['bytes']}")
        if digest != entry["sha256"]:
            raise SnapshotError(f"{path}: corrupt: its SHA-256 differs from the manifest's")
    return manifest


def context_of(manifest: dict) -> RunContext:
    """The replay's clock is the snapshot's: same run id, day and stats window."""
    w = manifest["stats_window"]
    return RunContext(run_id=manifest["snapshot_id"], collected_at=manifest["collected_at"],
                      stats_start_ms=w["start_ms"], stats_end_ms=w["end_ms"], stats_interval_s=w["interval_s"])


class _FromRecordFn(beam.DoFn):
    """Snapshot records -> the same tagged outputs ReadFromPrism produces.

    ``stats``: True takes only the VM stats records, False every other one,
    so two passes over the same files see each record once.
    """

    def __init__(self, stats: bool):
        self.stats = stats
        self.replayed = Metrics.counter(NS, "records_replayed")
        self.malformed = Metrics.counter(NS, "records_malformed")

    def setup(self):
        tune_gc()

    def start_bundle(self):
        self.counts: Counter = Counter()

    def process(self, record: dict) -> Iterable:
        if (record.get("kind") == STATS) != self.stats:
            return
        try:
            r = upgrade(record)
            payload = json.loads(r["payload"])
            account, kind, uuid, base_url = r["account"], r["kind"], r["uuid"], r["base_url"]
            if not (isinstance(payload, dict) and isinstance(uuid, str) and uuid):
                raise ValueError("payload is not a JSON object or uuid is empty")
        except (ValueError, KeyError, TypeError) as exc:
            self.malformed.inc()
            yield pvalue.TaggedOutput("dead_letter", {
                "stage": "replay", "account": str(record.get("account", "?")), "kind": str(record.get("kind")),
                "id": str(record.get("uuid", ""))[:128], "reason": f"malformed snapshot record: {exc}"[:500]})
            return
        self.replayed.inc()
        self.counts[(account, kind)] += 1
        if kind == "vm":
            yield pvalue.TaggedOutput("vm", ((account, uuid), (base_url, payload)))
        elif kind == STATS:
            yield pvalue.TaggedOutput(STATS, ((account, uuid), (base_url, payload)))
        elif kind in ("cluster", "host"):
            yield pvalue.TaggedOutput("infra", ((account, kind, uuid), (base_url, payload)))

    def finish_bundle(self):
        for (account, kind), n in sorted(self.counts.items()):
            yield pvalue.TaggedOutput(STATUS, GlobalWindows.windowed_value(
                account_event(account, "page_read", kind=kind, count=n)))


class ReadFromSnapshot(beam.PTransform):
    """A validated snapshot -> {'vm', 'infra', 'vm_stats', 'status', 'dead_letter'} like ReadFromPrism,
    but VMs and their stats apart, as they are archived (``derive`` pairs what it needs of them)."""

    def __init__(self, snapshot_dir: str, manifest: dict):
        super().__init__()
        self.snapshot_dir, self.manifest = snapshot_dir, manifest

    def expand(self, pbegin):
        """Two passes: the VM stats first (their utilization summaries are a
        side input of normalize, small), then everything else, so no VM has to
        wait in memory for its stats. A live run archives the kinds in separate
        files and each pass reads only its own; other snapshots are read twice."""
        files = [f["path"] for f in self.manifest["files"]]
        split = [f for f in files if posixpath.basename(f).startswith(f"entities-{STATS}-")]
        passes = (("Stats", True, split or files), ("", False, [f for f in files if f not in split] or files))
        outs = {}
        for label, stats, names in passes:
            paths = pbegin | f"SnapshotFiles{label}" >> beam.Create(
                [posixpath.join(self.snapshot_dir, f) for f in names])
            if self.manifest["format"] == "avro":
                records = paths | f"ReadAvro{label}" >> beam.io.ReadAllFromAvro()
            else:
                records = paths | f"ReadParquet{label}" >> beam.io.ReadAllFromParquet()
            outs[stats] = records | f"{label}FromRecords" >> beam.ParDo(_FromRecordFn(stats)).with_outputs(
                "vm", "infra", STATS, STATUS, "dead_letter")
        out, stats_out = outs[False], outs[True]
        events = []
        for account, a in sorted(self.manifest["accounts"].items()):
            if a.get("error"):
                events.append(account_event(account, "failed", error=f"in the collected run: {a['error']}"))
            elif not a.get("complete", True):
                events.append(account_event(account, "page_failed", kind="snapshot", offset=-1,
                                            error="the collected run was incomplete"))
        recorded = pbegin | "RecordedStatus" >> beam.Create(events)
        status = (out[STATUS], stats_out[STATUS], recorded) | "ReplayStatus" >> beam.Flatten()
        dead = (out.dead_letter, stats_out.dead_letter) | "ReplayDeadLetters" >> beam.Flatten()
        infra = out.infra | "DedupeInfra" >> beam.CombinePerKey(first_seen)
        return {"vm": out.vm, "infra": infra, STATS: stats_out[STATS], STATUS: status, "dead_letter": dead}
