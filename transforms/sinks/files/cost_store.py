"""WriteToCostStore: cost records -> Parquet dataset the cost data-source plugin serves.

Layout: ``{root}/billed_date=YYYY-MM-DD/account=<account>/<run_id>-NNNNN.parquet``
(the account is URI-quoted, as pyarrow's hive partitioning expects). Each
(day, account) partition is replaced whole when re-collected, so the plugin
(and through its ``changed`` windows, CloudForet) never sees a day twice.
The plugin tells changed days by the newest mtime under ``billed_date=`` dirs.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import apache_beam as beam
import pyarrow as pa

from schemas.parquet import COST_RECORD
from transforms.elements import CostRecord, SinkResult
from transforms.sinks.files.parquet_store import Partition, WriteToPartitionedParquet


def cost_partition(record: dict) -> Partition:
    return (("billed_date", record["billed_date"]), ("account", quote(str(record["account"]), safe="")))


def _json(value: object) -> str:
    return json.dumps(value or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def costs_table(records: list[dict], run_id: str) -> pa.Table:
    records = sorted(records, key=lambda r: (r["account"], r["resource"], r["usage_type"]))
    return pa.Table.from_pydict({
        "provider": [r["provider"] for r in records],
        "billed_date": [r["billed_date"] for r in records],
        "cost": [float(r["cost"]) for r in records],
        "usage_quantity": [float(r.get("usage_quantity") or 0.0) for r in records],
        "usage_unit": [r.get("usage_unit", "") for r in records],
        "product": [r.get("product", "") for r in records],
        "usage_type": [r.get("usage_type", "") for r in records],
        "resource": [r["resource"] for r in records],
        "region_code": [r.get("region_code", "") for r in records],
        "tags": [_json(r.get("tags")) for r in records],
        "additional_info": [_json(r.get("additional_info")) for r in records],
        "data_source_id": [r.get("data_source_id", "") for r in records],
        "account": [r["account"] for r in records],
        "currency": [str((r.get("additional_info") or {}).get("Currency", "")) for r in records],
        "run_id": [run_id] * len(records),
    }, schema=COST_RECORD)


class _CostsTable:
    """Picklable ``rows -> Table`` bound to a run id."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def __call__(self, rows: list) -> pa.Table:
        return costs_table(rows, self.run_id)


class WriteToCostStore(beam.PTransform[beam.PCollection[CostRecord], beam.PCollection[SinkResult]]):
    """Cost records -> per-account results ``{sink: cost_store, account, records}``."""

    def __init__(self, root: str, run_id: str):
        super().__init__()
        self.root, self.run_id = root, run_id

    def expand(self, records: beam.PCollection[CostRecord]) -> beam.PCollection[SinkResult]:
        return records | WriteToPartitionedParquet(self.root, self.run_id, _CostsTable(self.run_id),
                                                  cost_partition, replace="partition", sink="cost_store",
                                                  count_key="records", schema=COST_RECORD)
