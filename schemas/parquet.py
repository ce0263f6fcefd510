"""Arrow schemas of the Parquet stores the pipeline writes.

The metric store is a Parquet dataset partitioned by day (``date=YYYY-MM-DD``
directories), one row per metric point, sorted by metric then resource so a
reader can prune row groups by statistics and columns by name.
"""
from __future__ import annotations

import pyarrow as pa

METRIC_STORE_VERSION = "1"

METRIC_POINT = pa.schema(
    [
        pa.field("account", pa.string(), nullable=False),
        pa.field("resource_id", pa.string(), nullable=False),
        pa.field("region_code", pa.string()),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ],
    metadata={"schema": "nutanix-cloudforet metric point", "version": METRIC_STORE_VERSION},
)

SNAPSHOT_SCHEMA_VERSION = 2

# The Parquet twin of schemas/snapshot_v2.avsc.
SNAPSHOT_ENTITY = pa.schema(
    [
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("snapshot_id", pa.string(), nullable=False),
        pa.field("account", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("uuid", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("cluster_uuid", pa.string()),
        pa.field("cluster_name", pa.string()),
        pa.field("power_state", pa.string()),
        pa.field("collected_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("api_version", pa.string(), nullable=False),
        pa.field("base_url", pa.string(), nullable=False),
        pa.field("payload", pa.string(), nullable=False),
    ],
    metadata={"schema": "nutanix-cloudforet snapshot entity", "version": str(SNAPSHOT_SCHEMA_VERSION)},
)
