"""Regenerates tests/data/snapshot_v1: a tiny snapshot in schema version 1.

Version 1 was the first snapshot layout (time as ISO text, the entity in
``entity_json``, no typed columns). The sample is committed so that every
later collector proves it still replays it:

    python tests/data/make_snapshot_v1.py
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import fastavro

from emulators.prism.fleet import FleetSpec, generate_fleet

HERE = Path(__file__).resolve().parent / "snapshot_v1"
COLLECTED_AT = "2026-10-01T06:00:00Z"
END_MS = 1_790_834_400_000  # 2026-10-01T06:00:00Z
START_MS = END_MS - 3_600_000
BASE_URL = "https://prism-central.example.com:9440"


def main() -> None:
    HERE.mkdir(exist_ok=True)
    schema = fastavro.parse_schema(json.loads((Path(__file__).resolve().parents[2] / "schemas" /
                                               "snapshot_v1.avsc").read_text()))
    pc = generate_fleet(FleetSpec(seed=1, vms=3, clusters=1, hosts_per_cluster=1, disks_per_vm=1))[0]
    account = "pc-legacy"
    rows = []

    def add(kind: str, uuid: str, entity: dict) -> None:
        rows.append({"schema_version": 1, "snapshot_id": "run-20261001T060000Z", "account": account, "kind": kind,
                     "uuid": uuid, "collected_at": COLLECTED_AT, "base_url": BASE_URL,
                     "entity_json": json.dumps(entity, sort_keys=True)})

    for c in pc.cluster_entities():
        add("cluster", c["metadata"]["uuid"], c)
    for h in pc.host_entities():
        add("host", h["metadata"]["uuid"], h)
    for i in pc.iter_live_indices():
        vm = pc.vm_entity(i)
        add("vm", vm["metadata"]["uuid"], vm)
        series = pc.vm_stats(i, START_MS, END_MS, 300)
        add("vm_stats", vm["metadata"]["uuid"], {"entity_id": vm["metadata"]["uuid"], "data": [
            {"name": attr, "values": [{"time": t, "values": [v]} for t, v in points]}
            for attr, points in sorted(series.items())]})
    path = HERE / "entities-00000-of-00001.avro"
    with path.open("wb") as fh:
        fastavro.writer(fh, schema, rows, codec="deflate")
    data = path.read_bytes()
    counts: dict = {}
    for r in rows:
        counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    manifest = {
        "snapshot_id": "run-20261001T060000Z", "collected_at": COLLECTED_AT, "api_version": "v3",
        "format": "avro", "schema_version": 1,
        "stats_window": {"start_ms": START_MS, "end_ms": END_MS, "interval_s": 300},
        "accounts": {account: {"complete": True, "error": None, "counts": counts}},
        "counts": counts,
        "files": [{"path": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}],
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
