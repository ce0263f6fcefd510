"""Snapshots: live -> snapshot -> replay reproduces CloudForet; backfill; bad files."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import fastavro
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.fleet import FleetSpec, generate_fleet
from pipeline.run import run
from tests.helpers import PRISM_PASSWORD, ROOT, state, write_config
from transforms.common.canonical import canonical_json
from transforms.common.snapshot_format import file_digest
from transforms.sources.snapshot import validate_snapshot
from transforms.stages.normalize import normalize_vm

SPEC = FleetSpec(seed=5, prism_centrals=2, clusters=2, hosts_per_cluster=1, vms=24, disks_per_vm=1,
                 power_on_ratio=0.6)
V1_SAMPLE = ROOT / "tests" / "data" / "snapshot_v1"
@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)


def metric_rows(path: Path) -> list[dict]:
    table = ds.dataset(str(path), format="parquet", partitioning="hive").to_table()
    return sorted(table.to_pylist(), key=lambda r: (r["resource_id"], r["metric"], r["timestamp"]))


def run_with(emu, tmp_path, monkeypatch, *args, **config_kw) -> int:
    monkeypatch.setenv("TEST_CF_TOKEN", emu.app_token())
    monkeypatch.setenv("TEST_CF_PASSWORD", "collector-pass")  # the emulator's default DOMAIN_ADMIN user
    config = write_config(tmp_path, config_kw.pop("servers", []), emu, **config_kw)
    return run(["--config", config, *args])


def only_snapshot(tmp_path) -> Path:
    (snap,) = [p for p in (tmp_path / "snapshots").iterdir() if p.is_dir()]
    return snap


@pytest.mark.parametrize("fmt, codec", [("avro", None), ("avro", "deflate"), ("parquet", None)])
def test_round_trip_live_snapshot_replay(tmp_path, prism_servers, cloudforets, monkeypatch, fmt, codec):
    servers = prism_servers(SPEC)
    live, replayed = cloudforets("live"), cloudforets("replayed")
    assert run_with(live, tmp_path, monkeypatch, "--collected-at", "2026-11-20T06:00:00Z", servers=servers,
                    snapshot={"format": fmt, **({"codec": codec} if codec else {})}, metrics="metrics-live") == 0
    snap = only_snapshot(tmp_path)
    manifest = json.loads((snap / "manifest.json").read_text())
    assert manifest["format"] == fmt and manifest["collected_at"] == "2026-11-20T06:00:00Z"
    if fmt == "avro":
        for f in snap.glob("*.avro"):
            with f.open("rb") as fh:
                assert fastavro.reader(fh).codec == (codec or "snappy")
    assert manifest["schema_version"] == 2 and manifest["api_version"] == "v3"
    assert manifest["counts"] == {"cluster": 6, "host": 4, "vm": 24, "vm_stats": 24}
    assert set(manifest["accounts"]) == {s.pc.name for s in servers}
    assert all(f["path"].endswith("." + fmt) for f in manifest["files"])

    # replay into a CloudForet that never saw the live run, from the archive alone
    for s in servers:
        s.stop()
    assert run_with(replayed, tmp_path, monkeypatch, "--source", "snapshot", "--snapshot", str(snap),
                    servers=servers, metrics="metrics-replay") == 0
    live_state, replay_state = state(live), state(replayed)
    assert len(live_state["services"]) == 24 + 24 + 4 + 4 and len(live_state["costs"]) > 24
    assert replay_state == live_state  # field by field
    assert metric_rows(tmp_path / "metrics-replay") == metric_rows(tmp_path / "metrics-live")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["billed_date"] == "2026-11-20"  # time from the snapshot, not the clock

    # replaying again changes nothing
    before_files = sorted(p.name for p in (tmp_path / "metrics-replay").rglob("*.parquet"))
    assert run_with(replayed, tmp_path, monkeypatch, "--source", "snapshot", "--snapshot", str(snap),
                    servers=servers, metrics="metrics-replay") == 0
    assert state(replayed) == replay_state
    assert len(replayed.store.cloud_services()) == len(live.store.cloud_services())
    assert sorted(p.name for p in (tmp_path / "metrics-replay").rglob("*.parquet")) == before_files
    assert metric_rows(tmp_path / "metrics-replay") == metric_rows(tmp_path / "metrics-live")


def test_backfill_three_days_in_date_order(tmp_path, prism_servers, cloudforets, monkeypatch):
    servers = prism_servers(SPEC)
    live = cloudforets("live")
    days = ["2026-11-03", "2026-11-01", "2026-11-02"]  # collected out of order on purpose
    for day in days:
        assert run_with(live, tmp_path, monkeypatch, "--collected-at", f"{day}T06:00:00Z", servers=servers,
                        metrics="metrics-live") == 0
    per_day = Counter(c["billed_date"] for c in live.store.costs())
    assert set(per_day) == set(days) and len(set(per_day.values())) == 1

    backfill = cloudforets("backfill")
    assert run_with(backfill, tmp_path, monkeypatch, "--source", "snapshot",
                    "--snapshot", str(tmp_path / "snapshots" / "*"), servers=servers, metrics="m2") == 0
    costs = backfill.store.costs()
    keys = Counter((c["resource"], c["usage_type"], c["billed_date"]) for c in costs)
    assert max(keys.values()) == 1  # one record per resource, usage type and day
    assert Counter(c["billed_date"] for c in costs) == per_day
    # replayed in date order: the last report is the newest day's
    assert json.loads((tmp_path / "report.json").read_text())["billed_date"] == "2026-11-03"


def test_committed_schema_v1_snapshot_still_replays(tmp_path, cloudforets, monkeypatch):
    emu = cloudforets("v1")
    snap = tmp_path / "v1"
    shutil.copytree(V1_SAMPLE, snap)
    assert json.loads((snap / "manifest.json").read_text())["schema_version"] == 1
    assert run_with(emu, tmp_path, monkeypatch, "--source", "snapshot", "--snapshot", str(snap)) == 0
    services = emu.store.cloud_services()
    manifest = json.loads((snap / "manifest.json").read_text())
    vms = [c for c in services if c["cloud_service_type"] == "Instance"]
    assert len(vms) == manifest["counts"]["vm"]
    assert all(c["data"]["cluster"]["name"] for c in vms)
    assert {c["billed_date"] for c in emu.store.costs()} == {manifest["collected_at"][:10]}
    # read by today's normalization: every data key of today, sized from status as before
    today = set(normalize_vm("pc", "http://pc", generate_fleet(FleetSpec(vms=1))[0].vm_entity(0))[0]["data"])
    assert all(set(c["data"]) == today | {"collector_fingerprint"} for c in vms)
    assert all(c["data"]["size_known"] and c["data"]["prism_state"] == "COMPLETE" for c in vms)
    assert {c["resource"] for c in emu.store.costs()} >= {c["reference"]["resource_id"] for c in vms
                                                          if c["data"]["power_state"] == "ON"}


def test_real_world_answers_replay_as_they_were_collected(tmp_path, prism_servers, cloudforets, monkeypatch):
    """VMs being created or in error, a nameless host, duplicate and link-local IPs: archived
    as Prism answered them, replayed to the same cloud services and costs."""
    servers = prism_servers(FleetSpec(seed=3, vms=20, clusters=1, hosts_per_cluster=1, disks_per_vm=1,
                                      real_world_quirks=True))
    live, replayed = cloudforets("live"), cloudforets("replayed")
    assert run_with(live, tmp_path, monkeypatch, "--collected-at", "2026-11-20T06:00:00Z", servers=servers) == 0
    snap = only_snapshot(tmp_path)
    assert run_with(replayed, tmp_path, monkeypatch, "--source", "snapshot", "--snapshot", str(snap),
                    servers=servers) == 0
    live_state = state(live)
    assert {c["data"].get("prism_state") for c in live_state["services"]} >= {"PENDING", "ERROR"}
    assert [c["data"]["name_source"] for c in live_state["services"] if c["cloud_service_type"] == "Host"] == [
        "hypervisor_ip"]
    assert state(replayed) == live_state


def _live_snapshot(tmp_path, prism_servers, cloudforets, monkeypatch) -> tuple[Path, CloudForetEmulator]:
    servers = prism_servers(FleetSpec(seed=3, vms=10, clusters=1, hosts_per_cluster=1))
    assert run_with(cloudforets("live"), tmp_path, monkeypatch, "--collected-at", "2026-11-20T06:00:00Z",
                    servers=servers) == 0
    return only_snapshot(tmp_path), cloudforets("target")


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2]), "truncated"),
    (lambda f: f.write_bytes(f.read_bytes()[:-40] + bytes(40)), "corrupt"),
    (lambda f: f.unlink(), "missing"),
])
def test_damaged_snapshot_stops_before_writing(tmp_path, prism_servers, cloudforets, monkeypatch, capsys,
                                               damage, message):
    snap, target = _live_snapshot(tmp_path, prism_servers, cloudforets, monkeypatch)
    entity_file = next(snap.glob("entities*"))
    damage(entity_file)
    code = run_with(target, tmp_path, monkeypatch, "--source", "snapshot", "--snapshot", str(snap))
    err = capsys.readouterr().err
    assert code == 2 and message in err and entity_file.name in err and "Nothing was written" in err
    assert target.store.cloud_services() == [] and target.store.costs() == []


def test_snapshot_without_manifest_is_refused(tmp_path, prism_servers, cloudforets, monkeypatch, capsys):
    snap, target = _live_snapshot(tmp_path, prism_servers, cloudforets, monkeypatch)
    (snap / "manifest.json").unlink()
    assert run_with(target, tmp_path, monkeypatch, "--source", "snapshot", "--snapshot", str(snap)) == 2
    assert "no manifest.json" in capsys.readouterr().err
    assert target.store.cloud_services() == []


def test_one_malformed_entity_is_a_dead_letter_the_rest_replays(tmp_path, prism_servers, cloudforets, monkeypatch):
    snap, target = _live_snapshot(tmp_path, prism_servers, cloudforets, monkeypatch)
    entity_file = next(snap.glob("entities-vm-*.avro"))
    with entity_file.open("rb") as fh:
        reader = fastavro.reader(fh)
        schema, records = reader.writer_schema, list(reader)
    victim = next(r for r in records if r["kind"] == "vm")
    victim["payload"] = '{"metadata": {"uuid": "' + victim["uuid"] + '"}, "status": "garbage'  # cut JSON
    with entity_file.open("wb") as fh:
        fastavro.writer(fh, schema, records)
    manifest = json.loads((snap / "manifest.json").read_text())
    for f in manifest["files"]:  # a file that is whole, holding one bad entity
        f["bytes"], f["sha256"] = file_digest(str(snap / f["path"]))
    (snap / "manifest.json").write_text(json.dumps(manifest))
    validate_snapshot(str(snap))

    assert run_with(target, tmp_path, monkeypatch, "--source", "snapshot", "--snapshot", str(snap)) == 0
    vms = [c for c in target.store.cloud_services() if c["cloud_service_type"] == "Instance"]
    assert len(vms) == 9 and victim["uuid"] not in {c["reference"]["resource_id"] for c in vms}
    report = json.loads((tmp_path / "report.json").read_text())
    account = report["accounts"][victim["account"]]
    assert account["status"] == "WARNING" and account["dead_letters"] == 1
    assert "malformed snapshot record" in account["errors"][0] and victim["uuid"] in account["errors"][0]


def test_snapshot_is_readable_by_ordinary_tools_and_holds_no_secret(tmp_path, prism_servers, cloudforets,
                                                                   monkeypatch):
    snap, _ = _live_snapshot(tmp_path, prism_servers, cloudforets, monkeypatch)
    with next(snap.glob("entities-vm-*.avro")).open("rb") as fh:
        rows = list(fastavro.reader(fh))
    vm = next(r for r in rows if r["kind"] == "vm")
    assert vm["name"] and vm["cluster_name"] and vm["power_state"] in ("ON", "OFF")
    assert json.loads(vm["payload"])["metadata"]["uuid"] == vm["uuid"]
    # blocks are compressed: look for the password in what the files decode to
    decoded = [(snap / "manifest.json").read_text()]
    for f in snap.glob("*.avro"):
        with f.open("rb") as fh:
            decoded += [json.dumps(r, default=str) for r in fastavro.reader(fh)]
    assert len(decoded) > 1 and not any(PRISM_PASSWORD in text for text in decoded)


def test_parquet_snapshot_reads_with_pyarrow(tmp_path, prism_servers, cloudforets, monkeypatch):
    servers = prism_servers(FleetSpec(seed=3, vms=6, clusters=1, hosts_per_cluster=1))
    assert run_with(cloudforets("live"), tmp_path, monkeypatch, "--collected-at", "2026-11-20T06:00:00Z",
                    servers=servers, snapshot={"format": "parquet"}) == 0
    snap = only_snapshot(tmp_path)
    table = pq.read_table(next(snap.glob("entities-vm-*.parquet")), columns=["kind", "uuid", "power_state"])
    assert Counter(table.column("kind").to_pylist())["vm"] == 6


def test_a_vm_archived_twice_replays_once_with_its_utilization(tmp_path, prism_servers, cloudforets, monkeypatch):
    """Offset paging over a changing inventory can read a VM twice; the snapshot keeps what was read."""
    servers = prism_servers(FleetSpec(seed=3, vms=10, clusters=1, hosts_per_cluster=1))
    live, target = cloudforets("live"), cloudforets("target")
    assert run_with(live, tmp_path, monkeypatch, "--collected-at", "2026-11-20T06:00:00Z", servers=servers) == 0
    snap = only_snapshot(tmp_path)
    entity_file = next(snap.glob("entities-vm-*.avro"))
    with entity_file.open("rb") as fh:
        reader = fastavro.reader(fh)
        schema, records = reader.writer_schema, list(reader)
    twice = next(r for r in records if r["kind"] == "vm")
    with entity_file.open("wb") as fh:
        fastavro.writer(fh, schema, [*records, dict(twice)])
    manifest = json.loads((snap / "manifest.json").read_text())
    for f in manifest["files"]:
        f["bytes"], f["sha256"] = file_digest(str(snap / f["path"]))
    (snap / "manifest.json").write_text(json.dumps(manifest))

    # one record a batch: the two copies cannot meet in one batch's lookup
    assert run_with(target, tmp_path, monkeypatch, "--source", "snapshot", "--snapshot", str(snap),
                    batch_size=1) == 0
    refs = [c["reference"]["resource_id"] for c in target.store.cloud_services()]
    assert refs.count(twice["uuid"]) == 1 and len(refs) == len(set(refs))
    assert state(target) == state(live)  # utilization included: the replay is the live run again
    inventory = json.loads((tmp_path / "report.json").read_text())["accounts"][twice["account"]]["inventory"]
    assert inventory["created"] == len(refs) and inventory["unchanged"] == inventory["updated"] == 0  # handed on once


@pytest.mark.parametrize("payload", [
    {"spec": {"name": "vm-é-\u2603", "resources": {"num_sockets": 2}}, "metadata": {"uuid": "u"}, "b": [1.5, 1e16]},
    {"metadata": {"uuid": "u"}, "status": {"resources": {"memory": float("nan"), "x": float("inf")}}},
    {"big": 123456789012345678901234567890, "neg": -(2 ** 70)},
    {"guest_tools": None, "name": "nullable"},
    {2: "integer keys", 1: 0},
], ids=["plain", "nan-and-inf", "beyond-64-bits", "null", "non-string-key"])
def test_canonical_json_reads_back_exactly_as_the_standard_encoder(payload):
    """The archived text must mean what the standard encoder's would: NaN stays NaN, big
    integers stay exact, keys stay sorted."""
    text = canonical_json(payload)
    expected = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    assert repr(json.loads(text)) == repr(json.loads(expected))
    assert list(json.loads(text)) == sorted(json.loads(expected))


@pytest.mark.parametrize("fmt", ["avro", "parquet"])
def test_only_the_files_of_finished_bundles_are_committed(tmp_path, fmt):
    """A bundle that failed (its staged file never handed on) leaves nothing behind;
    committing again changes nothing; an earlier attempt's extra file goes."""
    from transforms.common.snapshot_format import to_record
    from transforms.sinks.files.snapshot import EntityFiles, entity_sink, record_kind
    from transforms.sinks.files.write_files import STAGING, StageFiles, commit_files

    def records(element):
        account, uuid = element
        yield "vm", to_record("s-1", 0, account, "vm", uuid, "https://pc", {"metadata": {"uuid": uuid}})

    def bundle(elements):
        fn = StageFiles(str(tmp_path), EntityFiles(fmt), entity_sink(fmt), records, record_kind, "snapshot")
        fn.setup()
        fn.start_bundle()
        for e in elements:
            fn.process(e)
        return [w.value for w in fn.finish_bundle()]

    ext = "." + fmt
    done = bundle([("pc-a", "vm-1"), ("pc-b", "vm-2")]) + bundle([("pc-a", "vm-3")])
    bundle([("pc-a", "vm-lost")])  # failed: its output never reached the commit
    (tmp_path / f"entities-vm-00002-of-00003{ext}").write_bytes(b"an earlier attempt's")
    assert len(list((tmp_path / STAGING).iterdir())) == 3

    for _ in range(2):  # a retried commit finds its files already moved
        paths, counts = commit_files(str(tmp_path), EntityFiles(fmt), done)
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"entities-vm-00000-of-00002{ext}",
                                                             f"entities-vm-00001-of-00002{ext}"]
        assert counts == [(("pc-a", "vm"), 2), (("pc-b", "vm"), 1)]
    if fmt == "avro":
        uuids = []
        for p in paths:
            with open(p, "rb") as fh:
                uuids += [r["uuid"] for r in fastavro.reader(fh)]
    else:
        uuids = [u for p in paths for u in pq.read_table(p)["uuid"].to_pylist()]
    assert sorted(uuids) == ["vm-1", "vm-2", "vm-3"]


def test_a_snapshot_is_read_back_as_the_elements_the_live_read_hands_on(tmp_path, prism_servers, cloudforets,
                                                                         monkeypatch):
    """ReadFromSnapshot returns the ReadResult ReadFromPrism does (transforms/elements.py): each VM
    once as ((account, uuid), VmRead) with the entity archived, its stats apart as ((account, uuid),
    entity_result), each cluster and host as ((account, kind, uuid), InfraRead)."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from transforms.elements import InfraRead, ReadResult, VmRead
    from transforms.sources.snapshot import ReadFromSnapshot

    snap, _ = _live_snapshot(tmp_path, prism_servers, cloudforets, monkeypatch)
    records = []
    for f in snap.glob("entities-*.avro"):
        with f.open("rb") as fh:
            records += list(fastavro.reader(fh))
    archived = {(r["account"], r["kind"], r["uuid"]): (r["base_url"], json.loads(r["payload"])) for r in records}
    vms = sorted(k for k in archived if k[1] == "vm")
    assert vms and any(k[1] == "vm_stats" for k in archived) and any(k[1] == "host" for k in archived)

    def vm_element(kv):
        (account, uuid), vm = kv
        assert type(vm) is VmRead and vm.stats is None  # the stats are held apart
        return (account, "vm", uuid), (vm.base_url, vm.entity)

    def infra_element(kv):
        key, infra = kv
        assert type(infra) is InfraRead and type(key) is tuple
        return key, tuple(infra)

    with beam.Pipeline() as p:
        read = p | ReadFromSnapshot(str(snap), validate_snapshot(str(snap)))
        assert isinstance(read, ReadResult) and read.vms_as_read is None and read.infra_as_read is None
        assert_that(read.vms | "Vms" >> beam.Map(vm_element),
                    equal_to([(k, archived[k]) for k in vms]), label="vms")
        assert_that(read.stats | "Stats" >> beam.MapTuple(lambda key, ent: ((key[0], "vm_stats", key[1]), ent)),
                    equal_to([(k, v[1]) for k, v in archived.items() if k[1] == "vm_stats"]), label="stats")
        assert_that(read.infra | "Infra" >> beam.Map(infra_element),
                    equal_to([(k, v) for k, v in archived.items() if k[1] in ("cluster", "host")]), label="infra")
        assert_that(read.dead_letter, equal_to([]), label="no dead letters")


@pytest.mark.parametrize("value, text", [
    ({"name": "vm-é", "x": None}, '{"name":"vm-é","x":null}'),
    ({"name": "vm-é"}, '{"name":"vm-é"}'),
    ({"a": 0.00001}, '{"a":0.00001}'),
    ({"a": 0.00001, "x": None}, '{"a":0.00001,"x":null}'),
    ({"a": 1e16, "b": "é"}, '{"a":1e+16,"b":"é"}'),
    ({"big": 2 ** 70, "name": "é"}, '{"big":1180591620717411303424,"name":"é"}'),
    ({"nan": float("nan"), "name": "é", "x": None}, '{"name":"é","nan":NaN,"x":null}'),
    ({"s": "\ud800"}, '{"s":"\\ud800"}'),
    ({2: "b", 1: "é"}, '{"1":"é","2":"b"}'),
], ids=["non-ascii-and-null", "non-ascii", "small-float", "small-float-and-null", "big-float",
        "beyond-64-bits-and-non-ascii", "nan-and-non-ascii", "lone-surrogate", "integer-keys"])
def test_canonical_json_is_one_text_for_one_value_whatever_else_it_holds(value, text):
    """orjson's text, also where orjson alone cannot write the value (a NaN, a big integer)."""
    assert canonical_json(value) == text


@pytest.mark.parametrize("neighbour", [1, None, 2 ** 70, float("nan"), {1: 2}], ids=repr)
@pytest.mark.parametrize("field", [0.00001, 1e16, 1.5, "vm-é", "a\x7fb", 123, [0.1, "ü"]], ids=repr)
def test_a_field_is_written_the_same_whatever_is_beside_it(field, neighbour):
    """The text of a field does not depend on an unrelated one (a null, a big integer, a
    NaN), or the fingerprint of an unchanged record would change with that field."""
    assert canonical_json({"a": field, "b": neighbour}).startswith('{"a":' + canonical_json(field) + ",")


def test_the_slow_writer_writes_what_orjson_writes_wherever_orjson_can():
    """canonical_json's own writer (for NaN, big integers, ...) and orjson are one encoding."""
    import random
    import struct

    import orjson

    from transforms.common.canonical import _encode
    rng = random.Random(5)
    for i in range(5000):
        f = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        if f != f or f in (float("inf"), float("-inf")):
            continue
        value = {"k": [f, rng.uniform(0, 1e-4), "é\x7f\u2028", i, -(1 << 63), None, {"z": True, "a": [1.0]}]}
        assert _encode(value) == orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
