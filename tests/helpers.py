"""What the tests share (one module; pytest fixtures are in conftest.py): the emulators'
credentials, configs for whole runs, the fleet as expected independently of the pipeline,
and small stores written by the real writers for the plugin tests."""
from __future__ import annotations

import os
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.server import PrismServer
from schemas.parquet import METRIC_POINT
from transforms.settings import Rate, RateCard
from transforms.stages.cost import costs_for
from transforms.stages.normalize import is_prism_central, normalize_cluster, normalize_host, normalize_vm

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared"))
PRISM_PASSWORD = "s3cret-prism-Pa55!"
CLOUDFORET_USER_PASSWORD = "s3cret-cf-Pa55!"
COLLECTED_AT = "2026-11-28T06:00:00Z"
DAY = "2026-11-28"
DEFAULT_RATE = {"vcpu_hour": 0.02, "gib_ram_hour": 0.005, "gib_storage_month": 0.05, "currency": "USD"}


def account_entry(server: PrismServer, name: str | None = None, password_env: str = "TEST_PRISM_PASSWORD") -> dict:
    return {"name": name or server.pc.name, "host": server.host,
            "port": server.port, "scheme": "http", "username": "admin", "password_env": password_env}


# -- whole runs (tests/integration) -------------------------------------------
def write_config(tmp_path, servers, emu, auth=None, accounts=None, name="config.yaml", snapshot=None,
                 metrics="metrics", **cloudforet):
    """cost_mode api (the default) and both write costs with Cost.create, which needs a DOMAIN_ADMIN user
    (an app token is refused at start-up) and a project; datasource mode runs with the app token."""
    mode = cloudforet.setdefault("cost_mode", "api")  # these tests read the costs back from Cost.create
    if auth is None:
        auth = ({"token_env": "TEST_CF_TOKEN"} if mode == "datasource"
                else {"user_id": "collector@example.com", "password_env": "TEST_CF_PASSWORD"})
    if mode in ("api", "both"):
        cloudforet.setdefault("cost_project_id", "project-nutanix")
    raw = {
        "accounts": accounts or [account_entry(s) for s in servers] or None,
        # the tests written for v3 read v3; test_prism_v4_read.py reads v4 and auto
        "prism": {"page_size": 25, "max_requests_per_s": 200, "max_concurrency": 4, "max_attempts": 3, "api": "v3"},
        "cloudforet": {"endpoint": emu.endpoint, "domain_id": emu.config.domain_id,
                       "workspace_id": emu.config.workspace_id, "auth": auth,
                       "batch_size": 40, **cloudforet},
        "rate_card": {"default": DEFAULT_RATE, "clusters": {"cluster-1-0": {"vcpu_hour": 0.05}}},
        "metric_store": {"path": str(tmp_path / metrics)},
        "cost_store": {"path": str(tmp_path / "costs")},
        "report": {"path": str(tmp_path / "report.json")},
        "snapshot": {"path": str(tmp_path / "snapshots"), **(snapshot or {})},
    }
    raw = {k: v for k, v in raw.items() if v is not None}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def expected_resources(servers):
    """The fleet as the emulators hold it, normalized independently of the pipeline."""
    out = []
    for s in servers:
        pc = s.pc
        for i in pc.iter_live_indices():
            out += normalize_vm(pc.name, s.url, pc.vm_entity(i))
    return out


@pytest.fixture(autouse=True)
def _env(monkeypatch, cloudforet):
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)
    monkeypatch.setenv("TEST_CF_TOKEN", cloudforet.app_token())
    monkeypatch.setenv("TEST_CF_PASSWORD", CLOUDFORET_USER_PASSWORD)


# -- the fleet, exactly (the fault matrix and the resilience tests) -----------
FLEET_CARD = RateCard(default=Rate(vcpu_hour=0.02, gib_ram_hour=0.005, gib_storage_month=0.05, currency="USD"))


def expected(server) -> tuple[dict, Counter]:
    """The fleet as Prism has it now: resources by reference id, and the day's cost keys."""
    pc, out = server.pc, {}
    for i in pc.iter_live_indices():
        for r in normalize_vm(pc.name, server.url, pc.vm_entity(i)):
            out[r["resource_id"]] = r
    for c in pc.cluster_entities():
        if not is_prism_central(c):
            out[c["metadata"]["uuid"]] = normalize_cluster(pc.name, server.url, c)
    for h in pc.host_entities():
        out[h["metadata"]["uuid"]] = normalize_host(pc.name, server.url, h)
    costs = Counter((c["resource"], c["usage_type"], c["billed_date"])
                    for r in out.values() for c in costs_for(r, FLEET_CARD, DAY, "ds-nutanix"))
    return out, costs


def assert_matches_fleet(emu, server, earlier_costs: Counter = Counter(), maybe_costs: Counter = Counter()) -> None:
    """``earlier_costs``: cost keys of resources that existed earlier the same day
    (a VM deleted since still cost its share of the day, once); ``maybe_costs``:
    keys that may be there (once) or not, e.g. written by a run that was killed."""
    want, want_costs = expected(server)
    want_costs = Counter(dict.fromkeys(set(want_costs) | set(earlier_costs), 1))
    services = emu.store.cloud_services()
    refs = Counter(c["reference"]["resource_id"] for c in services)
    assert max(refs.values()) == 1, "a resource is in CloudForet twice"
    assert set(refs) == set(want), (sorted(set(refs) - set(want))[:3], sorted(set(want) - set(refs))[:3])
    for c in services:
        w = want[c["reference"]["resource_id"]]
        assert (c["name"], c["cloud_service_type"], c["region_code"], c["account"]) == \
            (w["name"], w["cloud_service_type"], w["region_code"], w["account"])
        if w["kind"] == "vm":
            assert c["data"]["power_state"] == w["data"]["power_state"]
            assert c["data"]["vcpus"] == w["data"]["vcpus"]
    costs = Counter((c["resource"], c["usage_type"], c["billed_date"]) for c in emu.store.costs())
    optional = set(maybe_costs) - set(want_costs)
    costs_required = Counter({k: n for k, n in costs.items() if k not in optional})
    assert costs_required == want_costs, "the day's costs are not there exactly once"
    assert all(costs[k] <= 1 for k in optional), "a cost record is there twice"


VOLATILE = {"cloud_service_id", "created_at", "updated_at", "deleted_at", "cost_id", "domain_id", "workspace_id",
            "tag_keys", "collection_info"}


def state(emu: CloudForetEmulator) -> dict:
    """CloudForet's state without server-made ids and times, comparable across servers."""
    strip = lambda d: {k: v for k, v in d.items() if k not in VOLATILE}  # noqa: E731
    services = sorted((strip(c) for c in emu.store.cloud_services()),
                      key=lambda c: (c["cloud_service_type"], c["reference"]["resource_id"]))
    costs = sorted((strip(c) for c in emu.store.costs()),
                   key=lambda c: (c["resource"], c["usage_type"], c["billed_date"]))
    return {"services": services, "costs": costs}


# -- the plugins' stores -------------------------------------------------------
METRICS = {"cpu.utilization": "Percent", "memory.utilization": "Percent", "disk.read_iops": "Count/Second"}
PLUGIN_CARD = RateCard(
    default=Rate(vcpu_hour=0.02, gib_ram_hour=0.005, gib_storage_month=0.05, currency="USD"),
    clusters=(("cluster-b", Rate(vcpu_hour=0.05, gib_ram_hour=0.01, gib_storage_month=0.31, currency="USD")),),
)


def day_start_ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)


def point_value(vm: str, metric: str, ts_ms: int, run: str = "") -> float:
    """A deterministic, distinct value per point (run-specific when ``run`` is given)."""
    base = (sum(map(ord, vm)) % 17) + list(METRICS).index(metric) * 10
    return round(base + (ts_ms // 300_000) % 288 / 10 + (0.5 if run else 0.0), 6)


def make_points(vms: list[str], day: str, start_idx: int = 0, end_idx: int = 288, run: str = "") -> list[dict]:
    t0 = day_start_ms(day)
    out = []
    for vm in vms:
        for metric, unit in METRICS.items():
            for i in range(start_idx, end_idx):
                ts = t0 + i * 300_000
                out.append({"account": "pc-1", "resource_id": vm, "region_code": "cluster-a", "metric": metric,
                            "timestamp_ms": ts, "value": point_value(vm, metric, ts, run), "unit": unit})
    return out


def points_table(points: list[dict], run_id: str) -> pa.Table:
    """METRIC_POINT rows sorted by metric, resource_id, timestamp (the store's contract)."""
    points = sorted(points, key=lambda p: (p["metric"], p["resource_id"], p["timestamp_ms"]))
    return pa.Table.from_pydict({
        "account": [p["account"] for p in points], "resource_id": [p["resource_id"] for p in points],
        "region_code": [p["region_code"] for p in points], "metric": [p["metric"] for p in points],
        "timestamp": [p["timestamp_ms"] for p in points], "value": [p["value"] for p in points],
        "unit": [p["unit"] for p in points], "run_id": [run_id] * len(points)}, schema=METRIC_POINT)


def write_metric_run(root: str, run_id: str, points: list[dict]) -> list[str]:
    """Points -> ``{root}/date=D/<run_id>-00000.parquet`` exactly as WriteToMetricStore lays them out."""
    by_day: dict[str, list[dict]] = {}
    for p in points:
        d = datetime.fromtimestamp(p["timestamp_ms"] / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
        by_day.setdefault(d, []).append(p)
    paths = []
    for d, rows in by_day.items():
        directory = os.path.join(root, f"date={d}")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{run_id}-00000.parquet")
        pq.write_table(points_table(rows, run_id), path, compression="zstd", row_group_size=100_000)
        paths.append(path)
    return paths


def fleet(vcpus: int = 2) -> list[dict]:
    """Resources (as the pipeline normalizes them) over two clusters: VMs on/off and disks."""
    def vm(uuid, cluster, power, cpus, mem):
        return {"kind": "vm", "resource_id": uuid, "account": "pc-1", "name": uuid, "region_code": cluster,
                "cloud_service_type": "Instance", "tags": {"CostCenter": "cc1"},
                "data": {"power_state": power, "vcpus": cpus, "memory_gib": mem, "size_known": True,
                         "cluster": {"uuid": cluster, "name": cluster}}}

    def disk(uuid, cluster, size):
        return {"kind": "disk", "resource_id": uuid, "account": "pc-1", "name": uuid, "region_code": cluster,
                "cloud_service_type": "Disk", "tags": {}, "data": {"size_gib": size, "size_known": True,
                                                                   "cluster": {"uuid": cluster, "name": cluster}}}
    return [vm("vm-a1", "cluster-a", "ON", vcpus, 4.0), vm("vm-a2", "cluster-a", "OFF", 8, 16.0),
            vm("vm-b1", "cluster-b", "ON", vcpus, 16.0), disk("disk-a1", "cluster-a", 100.0),
            disk("disk-b1", "cluster-b", 310.0)]


def cost_records(days: list[str], vcpus: int = 2, account: str = "pc-1") -> list[dict]:
    from transforms.stages.cost import costs_for
    out = []
    for d in days:
        for r in fleet(vcpus):
            for c in costs_for({**r, "account": account}, PLUGIN_CARD, d, "ds-nutanix"):
                out.append(c)
    return out


def write_costs(root: str, run_id: str, records: list[dict]) -> list[dict]:
    """Run the real WriteToCostStore in a tiny Beam pipeline; returns its per-account results."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from transforms.sinks.files.cost_store import WriteToCostStore
    _RESULTS.pop(run_id, None)
    with beam.Pipeline(runner=FnApiRunner()) as p:
        _ = (p | beam.Create(records) | WriteToCostStore(root, run_id)
             | beam.Map(_collect, run_id))
    return _RESULTS.pop(run_id, [])


_RESULTS: dict[str, list[dict]] = {}  # the in-process runner's DoFns append here


def _collect(row: dict, key: str) -> None:
    _RESULTS.setdefault(key, []).append(row)


def wait_ready(channel: grpc.Channel, timeout: float = 10.0) -> None:
    grpc.channel_ready_future(channel).result(timeout=timeout)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_from(day: str, n: int) -> list[str]:
    d = datetime.fromisoformat(day)
    return [(d + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(n)]


# -- protobuf ------------------------------------------------------------------
def proto_dict(msg) -> dict:
    """A message as a dict with the proto's own field names (as CloudForet's code reads them)."""
    return MessageToDict(msg, preserving_proto_field_name=True)


def to_struct(d: dict) -> struct_pb2.Struct:
    """A dict as a ``google.protobuf.Struct`` (options, secret data, ...)."""
    s = struct_pb2.Struct()
    s.update(d)
    return s


# -- file times ----------------------------------------------------------------
def rewrite_after_sync(root: str, write) -> None:
    """Run ``write()`` so that what it writes under ``root`` is unmistakably newer than a
    sync taken just before, and everything already there unmistakably older: the tree is
    dated a minute back first, and what ``write`` touched is dated a second ahead after.
    (File times come from the kernel's coarse clock, a few ms behind ``time.time()``; a
    sleep would only make that race unlikely.)"""
    import time

    past, future = time.time() - 60, time.time() + 1
    for path in _tree(root):
        os.utime(path, (past, past))
    write()
    for path in _tree(root):
        if os.stat(path).st_mtime > past + 30:
            os.utime(path, (future, future))


def _tree(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        out.append(dirpath)
        out.extend(os.path.join(dirpath, n) for n in filenames)
    return out


# -- processes -----------------------------------------------------------------
def wait_for_ready_file(path, proc, timeout: float = 30.0) -> None:
    """Wait until a server process has written its ready file (it writes it atomically,
    once it listens), failing at once with its output if it exits first."""
    import time

    deadline = time.monotonic() + timeout  # a bound on a hung child, not a measurement
    ready = Path(path)
    while not (ready.exists() and ready.stat().st_size > 0):
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the server exited ({proc.returncode}) before it was ready: {out}")
        assert time.monotonic() < deadline, f"the server wrote no {ready} in {timeout:.0f}s"
        time.sleep(0.02)  # polling for the file: nothing to block on across processes


# -- time ----------------------------------------------------------------------
class FakeClock:
    """A ``connectors.clock.Clock`` whose time moves only when a test advances it or a
    client sleeps on it (a sleep returns at once): tests wait for no one."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


# -- plugins registered in the emulated Repository ------------------------------
PLUGIN_REPOSITORY = "nutanix"
PLUGIN_VERSION = "0.1.0"


def domain_admin_md(emu: CloudForetEmulator) -> list:
    """Metadata with a DOMAIN_ADMIN app token (what Plugin.register and monitoring's DataSource.register need)."""
    from emulators.cloudforet import auth
    token = emu.signer.issue("app-test-domain-admin", auth.CLIENT_SECRET, auth.SCOPE_DOMAIN, "DOMAIN_ADMIN",
                             emu.config.domain_id, "", auth.APP_TOKEN_TTL)
    return [("token", token)]


def workspace_owner_md(emu: CloudForetEmulator) -> list:
    """Metadata with the token of the emulator's first WORKSPACE_OWNER app."""
    app = next(a["app_id"] for a in emu.config.apps if a["role_type"] == "WORKSPACE_OWNER")
    return [("token", emu.app_token(app))]


def install_plugins(emu: CloudForetEmulator, endpoints: dict[str, str], versions: tuple[str, ...] = (PLUGIN_VERSION,)
                    ) -> dict[str, str]:
    """The emulated registry holds each plugin image (key of plugin.images.IMAGES -> HOST:PORT of the
    process serving it, where its supervisor runs it), and each is registered in the repository as
    ``setup --plugins`` registers it. Returns key -> plugin_id."""
    from google.protobuf.json_format import ParseDict
    from spaceone.api.repository.v1 import plugin_pb2, plugin_pb2_grpc

    from pipeline.plugin_definitions import PluginsOptions, plugin_registration
    from plugin.images import IMAGES
    options = PluginsOptions(image_repository=PLUGIN_REPOSITORY)
    md = domain_admin_md(emu)
    out = {}
    with grpc.insecure_channel(emu.endpoint) as channel:
        stub = plugin_pb2_grpc.PluginStub(channel)
        for key, endpoint in endpoints.items():
            image = IMAGES[key]
            emu.config.plugin_images.append({"image": options.image(image), "versions": list(versions),
                                             "endpoint": endpoint})
            request = ParseDict(plugin_registration(options, image), plugin_pb2.RegisterPluginRequest())
            out[key] = stub.register(request, metadata=md, timeout=30).plugin_id
    return out


MON_SECRET_ID = "secret-nutanix-monitoring"  # what Monitoring reads for every Metric call of the data source


def register_data_sources(emu: CloudForetEmulator, kinds: tuple[str, ...] = ("monitoring", "cost"),
                          metric_store: str = "", cost_store: str = "", cost_options: dict | None = None
                          ) -> dict[str, str]:
    """The monitoring and/or cost data source (their plugins installed first: ``install_plugins``)
    registered as ``setup --plugins`` registers them: by plugin_info, the store as its options (none:
    the plugin's own default). Returns kind -> data_source_id."""
    from google.protobuf.json_format import ParseDict
    from spaceone.api.cost_analysis.v1 import data_source_pb2 as cost_ds_pb2
    from spaceone.api.cost_analysis.v1 import data_source_pb2_grpc as cost_ds_grpc
    from spaceone.api.monitoring.v1 import data_source_pb2 as mon_ds_pb2
    from spaceone.api.monitoring.v1 import data_source_pb2_grpc as mon_ds_grpc

    from pipeline.plugin_definitions import PluginsOptions, cost_request, monitoring_request
    options = PluginsOptions(image_repository=PLUGIN_REPOSITORY)
    out = {}
    with grpc.insecure_channel(emu.endpoint) as channel:
        if "monitoring" in kinds:
            emu.config.secrets.setdefault(MON_SECRET_ID, {"nutanix_host": "pc.example.com"})
            req = monitoring_request(options, metric_store, MON_SECRET_ID)
            if not metric_store:
                req["plugin_info"]["options"] = {}
            out["monitoring"] = mon_ds_grpc.DataSourceStub(channel).register(
                ParseDict(req, mon_ds_pb2.RegisterDataSourceRequest()), metadata=domain_admin_md(emu),
                timeout=30).data_source_id
        if "cost" in kinds:
            req = cost_request(options, cost_store, emu.config.workspace_id)
            req["plugin_info"]["options"] = {**({"cost_store": cost_store} if cost_store else {}),
                                             **(cost_options or {})}
            out["cost"] = cost_ds_grpc.DataSourceStub(channel).register(
                ParseDict(req, cost_ds_pb2.RegisterDataSourceRequest()), metadata=workspace_owner_md(emu),
                timeout=30).data_source_id
    return out


def secret_of(server, password: str = PRISM_PASSWORD) -> dict:
    """The CloudForet secret data of an emulated Prism Central (schemas/nutanix_secret.schema.json)."""
    return {"nutanix_host": server.host, "nutanix_port": server.port, "nutanix_username": "admin",
            "nutanix_password": password, "scheme": "http"}
