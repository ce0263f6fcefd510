"""The sinks keep several batches in flight, bounded, and still write each record once."""
from __future__ import annotations

import threading
import time

import pytest
from apache_beam import pvalue

from connectors.cloudforet import CloudForetClient, CloudForetEndpoint, CloudForetEndpoints
from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.inventory_service import CloudServiceService
from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.fleet import FleetSpec, generate_fleet
from transforms.settings import CloudForetAuth, CloudForetOptions
from transforms.sinks import write_engine
from transforms.sinks.inventory import _WriteInventoryFn
from transforms.stages.normalize import normalize_vm


class InFlight:
    """Counts the calls of one kind the emulator is answering at once."""

    def __init__(self):
        self.now = self.most = 0
        self.lock = threading.Lock()

    def wrap(self, create):
        def counted(servicer, request, context):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            try:
                time.sleep(0.02)  # a slow server: answers overlap only if the client lets them
                return create(servicer, request, context)
            finally:
                with self.lock:
                    self.now -= 1
        return counted


def records(n_vms: int) -> list[dict]:
    pc = generate_fleet(FleetSpec(vms=n_vms, prism_centrals=1, clusters=1, hosts_per_cluster=1, disks_per_vm=1))[0]
    return [r for e in pc.vm_entities(0, n_vms) for r in normalize_vm(pc.name, "http://pc", e) if r["kind"] == "vm"]


def sink_options(emu, monkeypatch, batch_size: int = 100, in_flight: int = 2) -> CloudForetOptions:
    monkeypatch.setenv("TEST_CF_TOKEN", emu.app_token())
    return CloudForetOptions(
        endpoints=CloudForetEndpoints.single(CloudForetEndpoint(emu.endpoint)),
        auth=CloudForetAuth(domain_id=emu.config.domain_id, workspace_id=emu.config.workspace_id,
                            token_env="TEST_CF_TOKEN"),
        batch_size=batch_size, batches_in_flight=in_flight)


def client_for(emu, monkeypatch) -> CloudForetClient:
    options = sink_options(emu, monkeypatch)
    return CloudForetClient(options.endpoints, options.auth)


def held_refs(emu) -> list[str]:
    """The resource id of every cloud service CloudForet holds (a repeat shows twice)."""
    return [cs["reference"]["resource_id"] for cs in emu.store.cloud_services()]


def write_all(emu, monkeypatch, batch_size: int, in_flight: int, recs: list[dict]) -> list:
    fn = _WriteInventoryFn(sink_options(emu, monkeypatch, batch_size, in_flight))
    fn.setup()
    fn.start_bundle()
    return [o for r in recs for o in fn.process(r)] + finished(fn)


def finished(fn) -> list:
    """What finish_bundle hands on, unwrapped from its windowed values."""
    return [pvalue.TaggedOutput(o.tag, o.value.value) if isinstance(o, pvalue.TaggedOutput) else o.value
            for o in fn.finish_bundle()]


def drift(out: list) -> int:
    """Resources whose provider-bucket tags no longer match Prism, by the sink's results."""
    return sum(r.get("tags_drift", 0) for r in out if not isinstance(r, pvalue.TaggedOutput))


def totals(out: list) -> dict:
    """The sink's per-batch results summed: created, unchanged, failed, ..."""
    sums: dict = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    for r in out:
        if not isinstance(r, pvalue.TaggedOutput):
            for k in sums:
                sums[k] += r.get(k, 0)
    return sums


@pytest.mark.parametrize("in_flight", [1, 3])
def test_batches_overlap_up_to_the_limit_and_each_record_is_written_once(tmp_path, monkeypatch, in_flight):
    counter = InFlight()
    monkeypatch.setattr(CloudServiceService, "create", counter.wrap(CloudServiceService.create))
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        recs = records(60)
        out = write_all(emu, monkeypatch, batch_size=5, in_flight=in_flight, recs=recs)
        held = held_refs(emu)
    finally:
        emu.stop()
    assert sorted(held) == sorted(r["resource_id"] for r in recs)  # every record, once
    assert totals(out)["created"] == 60 and totals(out)["failed"] == 0
    # one batch of 5 at a time, or up to 3 batches' calls at once, never more
    assert counter.most <= 5 * in_flight
    if in_flight > 1:
        assert counter.most > 5


def test_a_bundle_retried_while_its_calls_are_in_flight_creates_nothing_twice(tmp_path, monkeypatch):
    """The runner retries a failed bundle at once; its earlier calls may not have landed yet.

    The server holds every create until the retry is about to wait for the failed bundle's
    calls: so they are still in flight when it starts, whatever the machine's speed."""
    original_create, original_wait = CloudServiceService.create, write_engine.IN_FLIGHT.wait_for
    retry_waited = threading.Event()

    def held_create(servicer, request, context):
        assert retry_waited.wait(30), "the retried bundle never waited for the calls in flight"
        return original_create(servicer, request, context)

    def wait_for(what, keys):
        with write_engine.IN_FLIGHT._lock:
            in_flight = any((what, k) in write_engine.IN_FLIGHT._calls for k in keys)
        if in_flight:
            retry_waited.set()  # the retry found the earlier calls: let them land now
        return original_wait(what, keys)

    monkeypatch.setattr(CloudServiceService, "create", held_create)
    monkeypatch.setattr(write_engine.IN_FLIGHT, "wait_for", wait_for)
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        recs = records(10)
        options = sink_options(emu, monkeypatch, batch_size=5, in_flight=2)
        failed = _WriteInventoryFn(options)
        failed.setup()
        failed.start_bundle()
        assert [o for r in recs for o in failed.process(r)] == []  # two batches in flight, none answered
        # the bundle fails here (an error elsewhere in the fused step): finish_bundle never runs
        retried = _WriteInventoryFn(options)
        retried.setup()
        retried.start_bundle()
        out = [o for r in recs for o in retried.process(r)] + finished(retried)
        held = held_refs(emu)
    finally:
        retry_waited.set()
        emu.stop()
    assert sorted(held) == sorted(r["resource_id"] for r in recs)  # each once
    assert totals(out) == {"created": 0, "updated": 0, "unchanged": 10, "failed": 0}


def test_the_same_record_twice_in_one_bundle_is_written_once_without_deadlock(tmp_path, monkeypatch):
    """A batch waits for earlier calls on its keys; when those are the same bundle's own
    batch still in flight, its answers must land without the bundle's thread."""
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        recs = records(10)
        out: list = []
        worker = threading.Thread(target=lambda: out.extend(
            write_all(emu, monkeypatch, batch_size=5, in_flight=2, recs=recs[:5] + recs[:5] + recs[5:])), daemon=True)
        worker.start()
        worker.join(30)
        assert not worker.is_alive(), "the sink deadlocked on its own batch in flight"
        held = held_refs(emu)
    finally:
        emu.stop()
    assert sorted(held) == sorted(r["resource_id"] for r in recs)  # each once
    assert totals(out) == {"created": 10, "updated": 0, "unchanged": 5, "failed": 0}


def test_lookups_of_an_unchanged_fleet_overlap(tmp_path, monkeypatch):
    """A second run's batches are nothing but lookups: they must not wait one for another."""
    counter = InFlight()
    monkeypatch.setattr(CloudServiceService, "list", counter.wrap(CloudServiceService.list))
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        recs = records(40)
        write_all(emu, monkeypatch, batch_size=5, in_flight=3, recs=recs)  # creates them
        counter.most = 0
        out = write_all(emu, monkeypatch, batch_size=5, in_flight=3, recs=recs)
    finally:
        emu.stop()
    assert totals(out) == {"created": 0, "updated": 0, "unchanged": 40, "failed": 0}
    assert 1 < counter.most <= 3


def test_a_listing_of_many_pages_asks_for_them_at_once_and_returns_each_match_once(tmp_path, monkeypatch):
    """Reconciliation lists every cloud service of an account: after the first page, the
    others are asked for at once."""
    counter = InFlight()
    monkeypatch.setattr(CloudServiceService, "list", counter.wrap(CloudServiceService.list))
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        recs = records(23)
        write_all(emu, monkeypatch, batch_size=50, in_flight=1, recs=recs)
        client = client_for(emu, monkeypatch)
        counter.most = 0
        listed = client.list_cloud_services([("provider", "nutanix", "eq")], only=["reference"], limit=5)
    finally:
        emu.stop()
    ids = [cs["reference"]["resource_id"] for cs in listed]
    assert sorted(ids) == sorted(r["resource_id"] for r in recs)  # all 5 pages, each match once
    assert counter.most > 1


def test_what_changed_is_written_and_only_that(tmp_path, monkeypatch):
    """Against what CloudForet holds: a changed plain field, data key or category is
    rewritten (the category into data.categories: an update sends no tags); the latest
    utilization alone, or the order of IPs, is not a change; a resource written
    without a fingerprint (an older collector) is rewritten once."""
    import copy

    from spaceone.api.inventory.v1 import cloud_service_pb2

    from connectors.cloudforet import to_struct
    from transforms.sinks.inventory import FINGERPRINT

    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        recs = records(8)
        assert totals(write_all(emu, monkeypatch, 4, 2, recs))["created"] == 8
        held = {cs["reference"]["resource_id"]: cs for cs in emu.store.cloud_services()}
        assert all(cs["data"][FINGERPRINT].startswith("v2:") for cs in held.values())
        again = copy.deepcopy(recs)
        again[0]["name"] += "-renamed"
        again[1]["data"]["power_state"] = "OFF" if again[1]["data"]["power_state"] == "ON" else "ON"
        again[2]["tags"] = {**again[2]["tags"], "Owner": "someone-else"}  # a category added in Prism
        again[2]["data"]["categories"] = dict(again[2]["tags"])
        again[3]["instance_size"] += 1
        again[4]["data"]["utilization"] = {"cpu_pct": 99.0}  # volatile: not a change
        again[5]["ip_addresses"] = list(reversed(again[5]["ip_addresses"] + ["10.9.9.9"]))
        again[6]["ip_addresses"] = list(reversed(again[6]["ip_addresses"]))  # same set
        # an older collector wrote recs[7]: no fingerprint in its data
        client = client_for(emu, monkeypatch)
        old = held[recs[7]["resource_id"]]
        client.call(client.cloud_service.update, cloud_service_pb2.UpdateCloudServiceRequest(
            cloud_service_id=old["cloud_service_id"], data=to_struct({**recs[7]["data"], FINGERPRINT: ""})),
            "CloudService.update")
        out = write_all(emu, monkeypatch, 4, 2, again)
        after = {cs["reference"]["resource_id"]: cs for cs in emu.store.cloud_services()}
        third = write_all(emu, monkeypatch, 4, 2, again)
    finally:
        emu.stop()
    assert totals(out) == {"created": 0, "updated": 6, "unchanged": 2, "failed": 0}
    assert after[recs[0]["resource_id"]]["name"].endswith("-renamed")
    assert after[recs[2]["resource_id"]]["data"]["categories"]["Owner"] == "someone-else"
    assert after[recs[2]["resource_id"]]["tags"] == {"nutanix": recs[2]["tags"]}  # as created: no custom bucket
    assert after[recs[7]["resource_id"]]["data"][FINGERPRINT].startswith("v2:")
    assert totals(third) == {"created": 0, "updated": 0, "unchanged": 8, "failed": 0}  # all settled
    assert drift(out) == drift(third) == 1  # recs[2]: tags.nutanix no longer Prism's categories


def test_fingerprint_is_of_our_keys_not_of_their_order():
    from transforms.sinks.inventory import fingerprint

    r = records(1)[0]
    shuffled = {**r, "data": dict(reversed(list(r["data"].items()))), "tags": dict(reversed(list(r["tags"].items())))}
    assert fingerprint(shuffled) == fingerprint(r)
    assert fingerprint({**r, "data": {**r["data"], "utilization": {"cpu_pct": 1.0}}}) == fingerprint(r)
    assert fingerprint({**r, "data": {**r["data"], "vcpus": r["data"]["vcpus"] + 1}}) != fingerprint(r)
    # a category changed in Prism changes data.categories, so the record's data is rewritten
    changed = {**r["data"]["categories"], "Environment": "changed"}
    assert fingerprint({**r, "tags": changed, "data": {**r["data"], "categories": changed}}) != fingerprint(r)


def test_every_record_given_is_seen_written_or_not(tmp_path, monkeypatch):
    """Reconciliation deletes what was not seen: the sink names every record it was
    given, per account and batch, those it could not write too."""
    from transforms.sinks.inventory import SEEN, create_request
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        recs = records(12)
        for r in recs[6:]:
            r["account"] = "pc-other"
        client = client_for(emu, monkeypatch)
        for _ in range(2):  # two cloud services claim recs[3]: it cannot be written, it is still seen
            client.call(client.cloud_service.create, create_request(recs[3]), "create")
        out = write_all(emu, monkeypatch, batch_size=4, in_flight=2, recs=recs)
    finally:
        emu.stop()
    seen = [o.value for o in out if isinstance(o, pvalue.TaggedOutput) and o.tag == SEEN]
    assert len(seen) >= 3  # per batch, not per record
    by_account: dict = {}
    for account, ids in seen:
        by_account.setdefault(account, []).extend(ids)
    assert {a: sorted(ids) for a, ids in by_account.items()} == {
        recs[0]["account"]: sorted(r["resource_id"] for r in recs[:6]),
        "pc-other": sorted(r["resource_id"] for r in recs[6:])}
    assert totals(out)["failed"] == 1


class Recorder:
    """What the collector sent to one emulator RPC: each request and its call metadata."""

    def __init__(self):
        self.calls: list = []

    def wrap(self, method):
        def recorded(servicer, request, context):
            self.calls.append((request, dict(context.invocation_metadata())))
            return method(servicer, request, context)
        return recorded


COLLECTOR_JOB_METADATA = {"collector_id", "job_id", "plugin_id", "secret.service_account_id", "secret.provider",
                          "secret.secret_id", "secret.project_id"}


def test_a_category_changed_in_prism_leaves_the_console_tags_and_is_reported(tmp_path, monkeypatch):
    """inventory CloudServiceService.update_resource() files a public update's tags under
    "custom" (_get_provider_from_meta), replacing that bucket whole, and never changes the
    provider's: an update that sent tags would overwrite people's console tags and still
    not correct tags.nutanix. The sink sends none (and no collector-job metadata to pass
    for a collector job); data.categories gets the new value; the drift is counted."""
    import copy

    from spaceone.api.inventory.v1 import cloud_service_pb2

    from connectors.cloudforet import to_struct

    creates, updates = Recorder(), Recorder()
    monkeypatch.setattr(CloudServiceService, "create", creates.wrap(CloudServiceService.create))
    monkeypatch.setattr(CloudServiceService, "update", updates.wrap(CloudServiceService.update))
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        recs = [r for r in records(6) if r["tags"]][:3]
        assert totals(write_all(emu, monkeypatch, 4, 2, recs))["created"] == 3
        held = {cs["reference"]["resource_id"]: cs for cs in emu.store.cloud_services()}
        target = held[recs[0]["resource_id"]]
        # a person tags the VM in the console: a public update, filed under "custom"
        client = client_for(emu, monkeypatch)
        client.call(client.cloud_service.update, cloud_service_pb2.UpdateCloudServiceRequest(
            cloud_service_id=target["cloud_service_id"], tags=to_struct({"Owner": "alice", "Environment": "mine"})),
            "CloudService.update")
        # Prism: the VM's Environment category changes (normalize keeps it in tags and data.categories)
        again = copy.deepcopy(recs)
        moved = {**again[0]["tags"], "Environment": "Moved"}
        again[0]["tags"], again[0]["data"]["categories"] = moved, dict(moved)
        updates.calls.clear()
        out = write_all(emu, monkeypatch, 4, 2, again)
        after = {cs["reference"]["resource_id"]: cs for cs in emu.store.cloud_services()}
    finally:
        emu.stop()
    assert totals(out) == {"created": 0, "updated": 1, "unchanged": 2, "failed": 0}
    got = after[recs[0]["resource_id"]]
    assert got["tags"]["custom"] == {"Owner": "alice", "Environment": "mine"}  # the person's tags, untouched
    assert got["tags"]["nutanix"] == recs[0]["tags"]  # as created: no public update changes it
    assert got["data"]["categories"] == moved  # the current categories, where the console shows them
    assert drift(out) == 1
    assert creates.calls and all(req.HasField("tags") for req, _ in creates.calls)  # a create files them
    assert len(updates.calls) == 1 and not updates.calls[0][0].HasField("tags")
    for _, metadata in creates.calls + updates.calls:
        assert not COLLECTOR_JOB_METADATA & set(metadata), metadata


def test_a_record_deleted_between_the_lookup_and_its_update_is_created_anew(tmp_path, monkeypatch):
    """A real inventory answers the update of a DELETED record INVALID_ARGUMENT
    ERROR_RESOURCE_ALREADY_DELETED (model/cloud_service_model.py CloudService.update()).
    The resource is still in Prism: the sink looks it up again, which leaves deleted
    records out, and creates it anew instead of failing it."""
    original = CloudServiceService.update
    raced: list = []

    def deleted_first(servicer, request, context):
        if not raced:  # someone deletes the record in CloudForet just before the update lands
            raced.append(request.cloud_service_id)
            servicer.store.replace("cloud_services", request.cloud_service_id,
                                   {**servicer.store.get("cloud_services", request.cloud_service_id),
                                    "state": "DELETED"}, "DELETED")
        return original(servicer, request, context)

    monkeypatch.setattr(CloudServiceService, "update", deleted_first)
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        recs = records(3)
        write_all(emu, monkeypatch, 4, 1, recs)
        recs[0]["name"] += "-renamed"  # a change in Prism: an update
        out = write_all(emu, monkeypatch, 4, 1, recs)
        live = {cs["reference"]["resource_id"]: cs for cs in emu.store.cloud_services()}
        every = emu.store.cloud_services(include_deleted=True)
    finally:
        emu.stop()
    assert raced
    assert totals(out) == {"created": 1, "updated": 0, "unchanged": 2, "failed": 0}
    assert live[recs[0]["resource_id"]]["name"].endswith("-renamed")
    assert live[recs[0]["resource_id"]]["cloud_service_id"] != raced[0]
    assert sorted(cs["state"] for cs in every if cs["reference"]["resource_id"] == recs[0]["resource_id"]) == [
        "ACTIVE", "DELETED"]


def test_reconcile_counts_a_record_someone_deleted_already_as_deleted(tmp_path, monkeypatch):
    """Listed ACTIVE, then deleted in the console before reconciliation's delete lands: the
    real server answers ERROR_RESOURCE_ALREADY_DELETED (CloudService.delete() of a DELETED
    record), which is "already deleted", not a failure."""
    from spaceone.api.inventory.v1 import cloud_service_pb2

    from transforms.settings import ReconcileOptions
    from transforms.sinks.reconcile import _ReconcileFn

    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        recs = records(3)
        write_all(emu, monkeypatch, 4, 1, recs)
        client = client_for(emu, monkeypatch)
        stale = client.list_cloud_services([("provider", "nutanix", "eq")],
                                           only=["cloud_service_id", "reference", "cloud_service_type", "name"])
        gone = stale[0]["cloud_service_id"]
        client.call(client.cloud_service.delete, cloud_service_pb2.CloudServiceRequest(cloud_service_id=gone),
                    "CloudService.delete")
        fn = _ReconcileFn(sink_options(emu, monkeypatch), ReconcileOptions())
        fn.setup()
        deleted, failed = fn._delete(stale)
        states = {cs["cloud_service_id"]: cs["state"] for cs in emu.store.cloud_services(include_deleted=True)}
    finally:
        emu.stop()
    assert (deleted, failed) == (3, [])
    assert set(states.values()) == {"DELETED"}


def test_reconcile_deletes_a_stale_cloud_service_though_a_vm_was_written_twice(tmp_path, monkeypatch):
    """CloudForet holds a, b and stale c; this run wrote a twice (offset paging listed it
    twice) and b: three writes against three stored must not settle by count."""
    from transforms.settings import ReconcileOptions
    from transforms.sinks.reconcile import _ReconcileFn

    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig()).start()
    try:
        a, b, c = records(3)
        write_all(emu, monkeypatch, 4, 1, [a, b, c])
        writes = [o for batch in ([a], [a, b])  # a in two bundles, as when two workers both passed it
                  for o in write_all(emu, monkeypatch, 4, 1, batch) if not isinstance(o, pvalue.TaggedOutput)]
        assert sum(r["created"] + r["updated"] + r["unchanged"] for r in writes) == 3
        fn = _ReconcileFn(sink_options(emu, monkeypatch), ReconcileOptions(max_delete_fraction=0.5))
        fn.setup()
        account = a["account"]
        out = list(fn.process((account, [[a["resource_id"], b["resource_id"], a["resource_id"]]]),
                              {account: (True, "")}, writes))
        left = held_refs(emu)
    finally:
        emu.stop()
    assert out == [{"sink": "reconcile", "account": account, "deleted": 1, "failed": 0}]
    assert sorted(left) == sorted([a["resource_id"], b["resource_id"]])
