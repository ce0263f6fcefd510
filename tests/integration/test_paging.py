"""ReadFromPrism fetches every page of every list, whatever the server answers."""
from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from emulators.prism.fleet import FleetSpec
from pipeline.config import parse_config
from tests.helpers import PRISM_PASSWORD, FakeClock, account_entry
from transforms.settings import RunContext
from transforms.sources.prism import ReadFromPrism

COLLECTED_AT = 1_795_000_000  # a fixed instant: tests never depend on the clock


def config_for(servers, page_size=500, **prism):
    return parse_config({
        "accounts": [account_entry(s) for s in servers],
        "prism": {"page_size": page_size, "max_requests_per_s": 500, "api": "v3", **prism},
        "cloudforet": {"endpoint": "127.0.0.1:1", "domain_id": "d", "workspace_id": "w",
                       "auth": {"token_env": "UNUSED_TOKEN"}},
    })


def run_read(config, expect_vm, expect_stats, expect_infra_kinds, bad_events=(), beam_args=()):
    """Runs ReadFromPrism alone and asserts on its outputs inside the pipeline."""
    from apache_beam.options.pipeline_options import PipelineOptions
    ctx = RunContext.create(COLLECTED_AT, 3600, 300)
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions(list(beam_args))) as p:
        read = p | beam.Create([a.name for a in config.accounts]) | ReadFromPrism(config, ctx)
        assert_that(read.vms_as_read | "vmkeys" >> beam.Keys(), equal_to(expect_vm), label="vm")
        assert_that(read.vms_as_read | "statkeys" >> beam.FlatMapTuple(lambda k, vm: [k] if vm.stats else []),
                    equal_to(expect_stats), label="stats")
        # each VM leaves the read once, paired with its own stats
        paired = read.vms | "paired" >> beam.MapTuple(
            lambda key, vm: (key, vm.entity["metadata"]["uuid"], vm.stats["entity_id"] if vm.stats else None))
        assert_that(paired, equal_to([(k, k[1], k[1] if k in expect_stats else None) for k in expect_vm]),
                    label="paired")
        assert_that(read.infra | "kinds" >> beam.Map(lambda k: k[0][:2]), equal_to(expect_infra_kinds),
                    label="infra")
        assert_that(read.status | beam.Filter(lambda e: e["event"] in ("failed", "page_failed")),
                    equal_to(list(bad_events)), label="no failures")


def live_vms(server):
    return [(server.pc.name, server.pc.vm_uuid(i)) for i in server.pc.iter_live_indices()]


def infra_kinds(server, clusters, hosts):
    return [(server.pc.name, "cluster")] * (clusters + 1) + [(server.pc.name, "host")] * hosts


@pytest.fixture(autouse=True)
def _password(monkeypatch):
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)


@pytest.mark.parametrize("vms", [0, 1, 20, 500, 501, 1234])
def test_every_vm_of_every_page(prism_servers, vms):
    (server,) = prism_servers(FleetSpec(vms=vms, clusters=2, hosts_per_cluster=2))
    expected = live_vms(server)
    assert len(expected) == vms
    # every VM exactly once (keys before any dedupe), its stats too, and the
    # Prism Central pseudo-cluster listed alongside the 2 clusters
    run_read(config_for([server]), expected, expected, infra_kinds(server, 2, 4))
    # every page once, and the first once more by the planner (it learns the total and page length);
    # one stats call per page of VMs (their entity_ids), none for an empty fleet
    assert server.requests["/api/nutanix/v3/vms/list"] == 1 + max(1, -(-vms // 500))
    assert server.requests["/api/nutanix/v3/groups"] == -(-vms // 500)


def test_server_answering_shorter_pages_than_asked(prism_servers):
    (server,) = prism_servers(FleetSpec(vms=100, clusters=1, hosts_per_cluster=2), max_page=7)
    expected = live_vms(server)
    run_read(config_for([server], page_size=50), expected, expected, infra_kinds(server, 1, 2))
    # planned with the answered length: the planner's call, then ceil(100 / 7) pages
    assert server.requests["/api/nutanix/v3/vms/list"] == 1 + 15
    assert server.requests["/api/nutanix/v3/groups"] == 15


def test_two_prism_centrals_are_two_accounts(prism_servers):
    servers = prism_servers(FleetSpec(vms=30, prism_centrals=2, clusters=1, hosts_per_cluster=1))
    expected = live_vms(servers[0]) + live_vms(servers[1])
    assert len(live_vms(servers[0])) == len(live_vms(servers[1])) == 15
    run_read(config_for(servers, page_size=8), expected, expected,
             infra_kinds(servers[0], 1, 1) + infra_kinds(servers[1], 1, 1))


def test_the_first_pages_of_every_account_are_asked_for_at_once(prism_servers):
    """Planning a fleet of many Prism Centrals must not wait for one first page after
    another: the planner's calls (3 kinds x 2 accounts, the first 6 calls of the read,
    as nothing is fetched before the plan) overlap."""
    import threading
    servers = prism_servers(FleetSpec(vms=20, prism_centrals=2, clusters=1, hosts_per_cluster=1))
    lock, calls, active = threading.Condition(), [], [0]
    for server in servers:
        def held(*args, _original=server._dispatch, **kwargs):
            with lock:
                active[0] += 1
                calls.append(active[0])
                lock.notify_all()
                # each of the first calls is held until three are in at once (bounded: one after
                # another, they never are, and each call goes on after 5 s)
                lock.wait_for(lambda: max(calls) >= 3, timeout=5)
            try:
                return _original(*args, **kwargs)
            finally:
                with lock:
                    active[0] -= 1
        server._dispatch = held
    expected = live_vms(servers[0]) + live_vms(servers[1])
    run_read(config_for(servers, page_size=50), expected, expected,
             infra_kinds(servers[0], 1, 1) + infra_kinds(servers[1], 1, 1))
    assert max(calls[:6]) >= 3  # one after another, it would be 1


def test_every_call_of_a_read_waits_for_the_per_prism_central_rate(prism_servers, monkeypatch):
    """Every call the read makes (the planner's, every page's, every stats call's, from 8
    threads at once) takes a token of the Prism Central's one limiter: on the limiter's
    clock (a fake one: nobody waits), never more than the rate + 1 in any second."""
    import threading

    from connectors import ratelimit
    (server,) = prism_servers(FleetSpec(vms=200, clusters=1, hosts_per_cluster=1))
    served, granted, lock = [0], [], threading.Lock()
    original = server._dispatch

    def counted(*args, **kwargs):
        with lock:
            served[0] += 1
        return original(*args, **kwargs)

    class Recorded(ratelimit.RateLimiter):
        def acquire(self) -> float:
            waited = super().acquire()
            with lock:
                granted.append(self.clock.monotonic())
            return waited

    server._dispatch = counted
    config = config_for([server], page_size=10, max_requests_per_s=10, max_concurrency=8)
    limiter = Recorded(10, clock=FakeClock())
    monkeypatch.setitem(ratelimit._shared, (f"http://{server.host}:{server.port}", 10.0), limiter)
    expected = live_vms(server)
    run_read(config, expected, expected, infra_kinds(server, 1, 1))
    assert served[0] == 3 + 2 + 2 * 20  # planner's 3 calls; clusters, hosts, 20 VM pages, their 20 stats calls
    assert len(granted) == served[0]  # every call waited for its token
    granted.sort()
    assert max(sum(1 for t in granted if s <= t < s + 1.0) for s in granted) <= 10 + 1
    assert granted[-1] - granted[0] >= (len(granted) - 2) / 10


def test_worker_processes_of_the_local_runner_each_keep_to_their_share_of_the_rate(prism_servers, monkeypatch):
    """SDK workers in separate processes have a limiter each: each gets rate / workers."""
    from pipeline.run import share_rate_limit
    from transforms.common.credentials import PrismClients
    (server,) = prism_servers(FleetSpec(vms=2, clusters=1, hosts_per_cluster=1))
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)
    config = config_for([server], max_requests_per_s=10)
    threads = share_rate_limit(config, ["--direct_num_workers", "2"])  # threads of one process: one limiter
    processes = share_rate_limit(config, ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"])
    rates = []
    for cfg in (threads, processes):
        clients = PrismClients(cfg)
        rates.append(clients.get(server.pc.name).limiter.rate)
        clients.close()
    assert rates == [10.0, 5.0]


def test_a_vm_listed_twice_is_handed_on_once_and_a_failed_bundle_hands_its_vms_on_again():
    from transforms.sources.prism import DropRepeats
    a, b = ("pc", "vm-a"), ("pc", "vm-b")
    fn = DropRepeats(token="pipeline-1")
    fn.start_bundle()
    assert [*fn.process((a, 1)), *fn.process((a, 2))] == [(a, 1)]  # a repeat within a bundle
    fn.finish_bundle()
    fn.start_bundle()
    assert list(fn.process((b, 1))) == [(b, 1)]  # this bundle fails: finish_bundle never runs
    fn.start_bundle()  # the runner retries it
    assert [*fn.process((b, 1)), *fn.process((a, 3))] == [(b, 1)]  # b again; a was committed
    fn.finish_bundle()
    other = DropRepeats(token="pipeline-1")  # another DoFn instance of the same pipeline and process
    other.start_bundle()
    assert list(other.process((b, 2))) == []
    fresh = DropRepeats()  # a new pipeline (same run id or not) starts afresh
    fresh.start_bundle()
    assert list(fresh.process((a, 4))) == [(a, 4)]


@pytest.mark.parametrize("args, runner, shuffled", [
    ([], "fn_api", False),
    (["--direct_num_workers", "2"], "fn_api", False),  # threads of one process
    (["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"], "fn_api", True),
    ([], "BundleBasedDirectRunner", True),
])
def test_repeats_are_shuffled_away_when_workers_run_in_several_processes(args, runner, shuffled):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.graph import runs_in_several_processes
    p = beam.Pipeline(runner=FnApiRunner() if runner == "fn_api" else runner, options=PipelineOptions(args))
    assert runs_in_several_processes(p) is shuffled


def test_tune_gc_raises_the_thresholds_and_never_lowers_one():
    import gc

    from transforms.common.gc_tuning import THRESHOLDS, tune_gc
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)  # CPython's defaults
        tune_gc()
        assert gc.get_threshold() == THRESHOLDS
        gc.set_threshold(THRESHOLDS[0] * 10, 1, THRESHOLDS[2] * 10)
        tune_gc()
        assert gc.get_threshold() == (THRESHOLDS[0] * 10, THRESHOLDS[1], THRESHOLDS[2] * 10)
    finally:
        gc.set_threshold(*saved)
