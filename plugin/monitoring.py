"""monitoring.plugin servicers: DataSource.init/verify, Metric.list/get_data over the metric store.

``metric_query`` is what CloudForet's Monitoring service sends: a map from its
key (a cloud_service_id) to the per-resource query this plugin returned from
``Metric.list`` (``{"resource_id": <VM uuid>}``, plus the ``region_name`` the
server adds). A bare string value or a missing ``resource_id`` means the key
itself is the VM uuid, so the plugin can also be queried directly.
"""
from __future__ import annotations

import math
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from google.protobuf.json_format import MessageToDict
from spaceone.api.monitoring.plugin import data_source_pb2, data_source_pb2_grpc, metric_pb2, metric_pb2_grpc

from .errors import PluginError, invalid, unary
from .metric_store import CATALOG, STATS, MetricStore, auto_period
from .store_options import StoreChoice, choice
from .timeutil import iso_ms, parse_time

REQUIRED_KEY = "reference"  # CloudService.reference = {resource_id: <VM uuid>, external_link}
METRIC_STORE_OPTION = "metric_store"
METADATA = {
    "supported_resource_type": ["inventory.CloudService"],
    "supported_stat": ["AVERAGE", "MAX", "MIN", "SUM"],
    "required_keys": [REQUIRED_KEY],
}


def _struct(d: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


def _plain(struct: struct_pb2.Struct) -> dict:
    return MessageToDict(struct)


def _resource_of(key: str, query: Any) -> str:
    if isinstance(query, dict):
        return str(query.get("resource_id") or key)
    if isinstance(query, str) and query:
        return query
    return key


def _options(request: Any) -> dict:
    return _plain(request.options) if request.HasField("options") else {}


def metric_stores(store: "MetricStore | StoreChoice[MetricStore] | None") -> StoreChoice[MetricStore]:
    """The metric store of a call: options ``store``/``metric_store`` (see store_options), else ``store``."""
    return choice(store, MetricStore, "metrics", METRIC_STORE_OPTION)


class MonitoringDataSource(data_source_pb2_grpc.DataSourceServicer):
    def __init__(self, store: "MetricStore | StoreChoice[MetricStore] | None") -> None:
        self.stores = metric_stores(store)

    @unary("DataSource.init")
    def init(self, request: data_source_pb2.InitRequest) -> data_source_pb2.PluginInfo:
        self.stores.of(_options(request))  # options naming no store are refused at registration
        return data_source_pb2.PluginInfo(metadata=_struct(METADATA))

    @unary("DataSource.verify")
    def verify(self, request: data_source_pb2.PluginVerifyRequest) -> empty_pb2.Empty:
        store = self.stores.of(_options(request))
        if not store.exists():
            raise PluginError(grpc.StatusCode.FAILED_PRECONDITION,
                              f"ERROR_PLUGIN_VERIFY: metric store {store.root} does not exist")
        return empty_pb2.Empty()


class MonitoringMetric(metric_pb2_grpc.MetricServicer):
    def __init__(self, store: "MetricStore | StoreChoice[MetricStore] | None") -> None:
        self.stores = metric_stores(store)

    @unary("Metric.list")
    def list(self, request: metric_pb2.MetricRequest) -> metric_pb2.MetricsInfo:
        query = _plain(request.query) if request.HasField("query") else {}
        resource_id = str(query.get("resource_id") or "")
        if not resource_id:
            raise invalid("query.resource_id is required (the VM uuid, CloudService.reference.resource_id)")
        options = _options(request)
        store = self.stores.of(options)
        lookback = int(options.get("lookback_days", 2))
        out = metric_pb2.MetricsInfo()
        for metric, unit in store.metrics_of(resource_id, max(lookback, 1)):
            name, group = CATALOG.get(metric, (metric, metric.split(".")[0].title()))
            out.metrics.add(key=metric, name=name, group=group, unit=_struct({"x": "Timestamp", "y": unit}),
                            metric_query=_struct({"resource_id": resource_id}))
        return out

    @unary("Metric.get_data")
    def get_data(self, request: metric_pb2.MetricDataRequest) -> metric_pb2.MetricDataInfo:
        if not request.metric:
            raise invalid("metric is required")
        if request.metric not in CATALOG:
            raise invalid(f"unknown metric {request.metric!r}; supported: {sorted(CATALOG)}")
        stat = (request.stat or "AVERAGE").upper()
        if stat not in STATS:
            raise invalid(f"stat {request.stat!r} is not supported; use one of {list(STATS)}")
        start, end = parse_time(request.start, "start"), parse_time(request.end, "end")
        if start >= end:
            raise invalid(f"start ({request.start}) must be before end ({request.end})")
        if request.period < 0:
            raise invalid("period must be positive (seconds)")
        start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        period = request.period or auto_period((end_ms - start_ms) / 1000)
        queries = _plain(request.metric_query) if request.HasField("metric_query") else {}
        if not queries:
            raise invalid("metric_query is required: {<key>: {resource_id: <VM uuid>}}")
        key_of: dict[str, list[str]] = {}
        for key, query in queries.items():
            key_of.setdefault(_resource_of(key, query), []).append(key)
        series = self.stores.of(_options(request)).series(list(key_of), request.metric, start_ms, end_ms, period, stat)
        out = metric_pb2.MetricDataInfo()
        if not series.values:
            out.labels.SetInParent()
            out.values.SetInParent()
            return out
        out.labels.extend([iso_ms(t) for t in series.labels_ms])
        values: dict[str, list] = {}
        for rid, row in series.values.items():
            clean = [None if math.isnan(v) else v for v in row.tolist()]
            for key in key_of.get(rid, ()):
                values[key] = clean
        out.values.update(values)
        return out
