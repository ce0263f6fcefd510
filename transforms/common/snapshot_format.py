"""The snapshot format, shared by its writer and its reader.

A snapshot is a directory ``<root>/<snapshot_id>/`` holding entity files
(Avro by default, or Parquet; ``transforms/sinks/files/write_files.py``) and
``manifest.json``, written last and atomically: a snapshot without a manifest
is incomplete. The manifest lists every file with its size and SHA-256, so a
truncated or corrupt file is found before a replay writes anything.

Records keep the fields users query on as typed columns and the entity as
Prism answered it (``payload``), so nothing is lost. Credentials are never
part of a record or the manifest.
"""
from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Any

from apache_beam.io.filesystems import FileSystems

from schemas import load_json_schema
from schemas.parquet import SNAPSHOT_SCHEMA_VERSION
from transforms.common.canonical import canonical_json
from transforms.sources.prism import STATS

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


def file_digest(path: str) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    with FileSystems.open(path, compression_type="uncompressed") as fh:
        while chunk := fh.read(1 << 20):
            size += len(chunk)
            h.update(chunk)
    return size, h.hexdigest()
