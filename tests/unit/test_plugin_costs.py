"""The cost store writer (real Beam transform) and the cost data-source plugin over real gRPC."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import grpc
import pyarrow.parquet as pq
import pytest
from spaceone.api.cost_analysis.plugin import (
    cost_pb2,
    cost_pb2_grpc,
    data_source_pb2,
    data_source_pb2_grpc,
    job_pb2,
    job_pb2_grpc,
)

from plugin.server import CostPluginServer
from schemas.parquet import COST_RECORD
from tests.helpers import cost_records, rewrite_after_sync, write_costs
from tests.helpers import proto_dict as MessageToDict
from tests.helpers import to_struct as _s


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


DAYS = ["2026-10-31", "2026-11-27", "2026-11-28"]


@pytest.fixture
def store(tmp_path):
    costs = str(tmp_path / "costs")
    results = write_costs(costs, "20261128T0100-run", cost_records(DAYS))
    return tmp_path, costs, results


def tasks(channel, **kw):
    opts = kw.pop("options", {})
    return MessageToDict(job_pb2_grpc.JobStub(channel).get_tasks(
        job_pb2.GetTasksRequest(options=_s(opts), secret_data=_s({}), **kw), timeout=30))


def get_data(channel, task_options):
    return [MessageToDict(b) for b in cost_pb2_grpc.CostStub(channel).get_data(
        cost_pb2.GetDataRequest(options=_s({}), secret_data=_s({}), task_options=_s(task_options)), timeout=30)]


def test_writer_layout_schema_and_results(store):
    _, costs, results = store
    assert results == [{"sink": "cost_store", "account": "pc-1", "records": 18}]
    files = sorted(os.path.relpath(os.path.join(d, f), costs) for d, _, fs in os.walk(costs) for f in fs)
    assert files == [f"billed_date={d}/account=pc-1/20261128T0100-run-00000.parquet" for d in DAYS]
    table = pq.read_table(os.path.join(costs, files[-1]))
    assert table.schema.equals(COST_RECORD, check_metadata=False)
    row = [r for r in table.to_pylist() if r["resource"] == "vm-a1" and r["usage_type"] == "vcpu"][0]
    assert row["billed_date"] == "2026-11-28" and row["currency"] == "USD" and row["run_id"] == "20261128T0100-run"
    assert json.loads(row["tags"]) == {"CostCenter": "cc1"}
    assert json.loads(row["additional_info"])["Cluster"] == "cluster-a"
    assert row["cost"] == pytest.approx(2 * 24 * 0.02)


def test_rewriting_a_day_replaces_its_partition(store):
    _, costs, _ = store
    write_costs(costs, "20261129T0100-run", cost_records(["2026-11-28"], vcpus=4))
    names = os.listdir(os.path.join(costs, "billed_date=2026-11-28", "account=pc-1"))
    assert names == ["20261129T0100-run-00000.parquet"]
    assert os.listdir(os.path.join(costs, "billed_date=2026-11-27", "account=pc-1")) == [
        "20261128T0100-run-00000.parquet"]


def test_init_verify_and_first_sync_plan(store):
    tmp, costs, _ = store
    with CostPluginServer(costs) as server, grpc.insecure_channel(server.endpoint) as ch:
        md = MessageToDict(data_source_pb2_grpc.DataSourceStub(ch).init(data_source_pb2.InitRequest()))["metadata"]
        assert md["currency"] == "USD" and md["data_source_rules"]
        data_source_pb2_grpc.DataSourceStub(ch).verify(data_source_pb2.PluginVerifyRequest())
        first = tasks(ch)
        assert [t["task_options"] for t in first["tasks"]] == [
            {"start": "2026-10-31", "end": "2026-10-31", "billed_month": "2026-10"},
            {"start": "2026-11-27", "end": "2026-11-28", "billed_month": "2026-11"}]
        assert first["changed"] == [{"start": "2026-10", "end": "2026-10"}, {"start": "2026-11", "end": "2026-11"}]
        since = tasks(ch, start="2026-11")
        assert [c["start"] for c in since["changed"]] == ["2026-11"]
        daily = tasks(ch, start="2026-11-28", options={"changed_granularity": "DAY"})
        assert daily["changed"] == [{"start": "2026-11-28", "end": "2026-11-28"}]


def test_changed_is_only_what_was_rewritten_after_last_sync(store):
    tmp, costs, _ = store
    with CostPluginServer(costs) as server, grpc.insecure_channel(server.endpoint) as ch:
        synced_at = now_iso()
        assert tasks(ch, last_synchronized_at=synced_at).get("tasks", []) == []
        rewrite_after_sync(costs, lambda: write_costs(costs, "20261129T0100-run",
                                                      cost_records(["2026-11-27"], vcpus=4)))
        day = tasks(ch, last_synchronized_at=synced_at, options={"changed_granularity": "DAY"})
        assert day["changed"] == [{"start": "2026-11-27", "end": "2026-11-27"}]
        assert [t["task_options"] for t in day["tasks"]] == [{"start": "2026-11-27", "end": "2026-11-27"}]
        month = tasks(ch, last_synchronized_at=synced_at)
        assert month["changed"] == [{"start": "2026-11", "end": "2026-11"}]
        # the whole month is re-sent: the server deletes the month's old costs
        assert month["tasks"][0]["task_options"]["start"] == "2026-11-27"
        assert month["tasks"][0]["task_options"]["end"] == "2026-11-28"


def test_get_data_streams_every_record_with_billed_date(store):
    tmp, costs, _ = store
    expected = {(c["resource"], c["usage_type"], c["billed_date"]): c for c in cost_records(DAYS[1:])}
    with CostPluginServer(costs) as server, grpc.insecure_channel(server.endpoint) as ch:
        batches = get_data(ch, {"start": "2026-11-01", "end": "2026-11-30"})
    got = {(r["resource"], r["usage_type"], r["billed_date"]): r for b in batches for r in b["results"]}
    assert set(got) == set(expected)
    for key, rec in expected.items():
        assert got[key]["cost"] == pytest.approx(rec["cost"]) and got[key]["region_code"] == rec["region_code"]
        assert got[key]["tags"] == rec["tags"] and got[key]["additional_info"]["Account"] == "pc-1"
        assert got[key]["provider"] == rec["provider"]


@pytest.mark.parametrize("task_options,needle", [
    ({}, "task_options.start is required"),
    ({"start": "28/11/2026"}, "is not YYYY-MM"),
    ({"start": "2026-11-28", "end": "2026-11-01"}, "is before start"),
])
def test_bad_task_options_are_invalid_argument(store, task_options, needle):
    tmp, costs, _ = store
    with CostPluginServer(costs) as server, grpc.insecure_channel(server.endpoint) as ch:
        with pytest.raises(grpc.RpcError) as err:
            get_data(ch, task_options)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            tasks(ch, last_synchronized_at="last tuesday")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_malformed_cost_file_is_internal_naming_it(store):
    tmp, costs, _ = store
    bad = os.path.join(costs, "billed_date=2026-11-28", "account=pc-2", "zz-run-00000.parquet")
    os.makedirs(os.path.dirname(bad))
    with open(bad, "wb") as fh:
        fh.write(b"garbage")
    with CostPluginServer(costs) as server, grpc.insecure_channel(server.endpoint) as ch:
        with pytest.raises(grpc.RpcError) as err:
            get_data(ch, {"start": "2026-11-28", "end": "2026-11-28"})
        assert err.value.code() == grpc.StatusCode.INTERNAL and bad in err.value.details()
        assert get_data(ch, {"start": "2026-11-27", "end": "2026-11-27"})[0]["results"]
