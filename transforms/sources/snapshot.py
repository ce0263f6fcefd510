"""ReadFromSnapshot: replay an archived snapshot through the same pipeline
(the format: ``transforms.common.snapshot_format``)."""
from __future__ import annotations

import json
import posixpath
from collections import Counter
from typing import Iterable

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from transforms.common.gc_tuning import tune_gc
from transforms.common.snapshot_format import (
    FORMATS,
    MANIFEST,
    NS,
    SUPPORTED_VERSIONS,
    SnapshotError,
    file_digest,
    manifest_path,
    upgrade,
)
from transforms.elements import DEAD_LETTER, DeadLetter, InfraRead, ReadResult, VmRead, account_event
from transforms.settings import RunContext
from transforms.sources.prism import INFRA, STATS, STATUS, HandOnOnce, first_seen


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
        size, digest = file_digest(path)
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
    """Snapshot records -> the elements ReadFromPrism produces (transforms/elements.py):
    ``vm`` VmWithStats (its stats None: they are ``vm_stats``, VmStats), ``infra``
    InfraEntity, ``status`` AccountEvent, ``dead_letter`` DeadLetter.

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
            yield pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                stage="replay", account=str(record.get("account", "?")), kind=str(record.get("kind")),
                id=str(record.get("uuid", ""))[:128], reason=f"malformed snapshot record: {exc}"[:500]))
            return
        self.replayed.inc()
        self.counts[(account, kind)] += 1
        if kind == "vm":
            yield pvalue.TaggedOutput("vm", ((account, uuid), VmRead(base_url, payload, None)))
        elif kind == STATS:
            yield pvalue.TaggedOutput(STATS, ((account, uuid), payload))
        elif kind in ("cluster", "host"):
            yield pvalue.TaggedOutput(INFRA, ((account, kind, uuid), InfraRead(base_url, payload)))

    def finish_bundle(self):
        for (account, kind), n in sorted(self.counts.items()):
            yield pvalue.TaggedOutput(STATUS, GlobalWindows.windowed_value(
                account_event(account, "page_read", kind=kind, count=n)))


class ReadFromSnapshot(beam.PTransform[beam.pvalue.PBegin, ReadResult]):
    """A validated snapshot -> a ``ReadResult`` like ReadFromPrism's, but with VMs and
    their stats apart, as they are archived: ``vms`` each VM once without stats,
    ``stats`` every VM's stats (``derive`` pairs what it needs of them).

    ``shuffle_dedupe`` also groups VMs by key (see ``HandOnOnce``): a snapshot
    holds what offset paging read, repeats included."""

    def __init__(self, snapshot_dir: str, manifest: dict, shuffle_dedupe: bool = False):
        super().__init__()
        self.snapshot_dir, self.manifest = snapshot_dir, manifest
        self.shuffle_dedupe = shuffle_dedupe

    def expand(self, pbegin: beam.pvalue.PBegin) -> ReadResult:
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
                "vm", INFRA, STATS, STATUS, DEAD_LETTER)
        out, stats_out = outs[False], outs[True]
        events = []
        for account, a in sorted(self.manifest["accounts"].items()):
            # older snapshots name no API: they were all read through v3
            events.append(account_event(account, "api", api=a.get("api", "v3"),
                                        text=f"replayed; collected {a.get('api_reason') or 'through v3'}"))
            if a.get("error"):
                events.append(account_event(account, "failed", error=f"in the collected run: {a['error']}"))
            elif not a.get("complete", True):
                events.append(account_event(account, "page_failed", kind="snapshot", offset=-1,
                                            error="the collected run was incomplete"))
            elif not any(a.get("counts", {}).values()):  # nothing archived: no record will say it was read
                events.append(account_event(account, "planned", totals={}, requests=0))
        recorded = pbegin | "RecordedStatus" >> beam.Create(events)
        status = (out[STATUS], stats_out[STATUS], recorded) | "ReplayStatus" >> beam.Flatten()
        dead = (out[DEAD_LETTER], stats_out[DEAD_LETTER]) | "ReplayDeadLetters" >> beam.Flatten()
        infra = out[INFRA] | "DedupeInfra" >> beam.CombinePerKey(first_seen)
        vms = out.vm | "DropRepeatedVms" >> HandOnOnce(self.shuffle_dedupe)
        return ReadResult(vms=vms, infra=infra, status=status, dead_letter=dead, stats=stats_out[STATS])
