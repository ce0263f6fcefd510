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

COST_STORE_VERSION = "1"

# The cost store: ``{root}/billed_date=YYYY-MM-DD/account=<quoted account>/<run_id>-NNNNN.parquet``,
# one row per cost record of ``transforms.stages.cost.costs_for``. A re-collected day of
# an account replaces its partition whole, so the cost plugin never doubles a day.
COST_RECORD = pa.schema(
    [
        pa.field("provider", pa.string(), nullable=False),
        pa.field("billed_date", pa.string(), nullable=False),  # YYYY-MM-DD, as CloudForet wants it
        pa.field("cost", pa.float64(), nullable=False),
        pa.field("usage_quantity", pa.float64(), nullable=False),
        pa.field("usage_unit", pa.string()),
        pa.field("product", pa.string()),
        pa.field("usage_type", pa.string()),
        pa.field("resource", pa.string(), nullable=False),
        pa.field("region_code", pa.string()),
        pa.field("tags", pa.string()),             # JSON object
        pa.field("additional_info", pa.string()),  # JSON object
        pa.field("data_source_id", pa.string()),
        pa.field("account", pa.string(), nullable=False),
        pa.field("currency", pa.string()),
        pa.field("run_id", pa.string(), nullable=False),
    ],
    metadata={"schema": "nutanix-cloudforet cost record", "version": COST_STORE_VERSION},
)
