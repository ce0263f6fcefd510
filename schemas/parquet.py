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
