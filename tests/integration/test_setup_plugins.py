"""``python -m pipeline setup --plugins`` against the emulator: the three plugins registered in the
Repository, the Collector, the monitoring and the cost data source made through them; idempotent,
--dry-run, each call with the role its service requires; then a collector job and a cost sync run
through what it registered."""
from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
import yaml
from google.protobuf.json_format import MessageToDict
from spaceone.api.cost_analysis.v1 import data_source_pb2 as cost_ds_pb2
from spaceone.api.cost_analysis.v1 import data_source_pb2_grpc as cost_ds_grpc
from spaceone.api.inventory.v1 import collector_pb2, collector_pb2_grpc

from emulators.prism.fleet import FleetSpec
from pipeline.config import ConfigError, load_config
from pipeline.plugin_definitions import COLLECTOR_NAME, COST_DATA_SOURCE, MONITORING_DATA_SOURCE
from pipeline.run import run
from pipeline.setup import STEPS, SetupError, run_setup
from pipeline.setup_plugins import PLUGIN_STEPS
from plugin.collector.server import CollectorPluginServer
from plugin.images import IMAGES
from plugin.server import CostPluginServer, MonitoringPluginServer
from tests.helpers import COLLECTED_AT, PLUGIN_REPOSITORY, ROOT
from tests.integration.test_setup import setup_config

SPEC = FleetSpec(seed=19, prism_centrals=2, clusters=1, hosts_per_cluster=1, vms=10, disks_per_vm=1)
PLUGINS = {"image_repository": PLUGIN_REPOSITORY, "collector_hours": [3, 15]}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    from tests.helpers import PRISM_PASSWORD
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)


@pytest.fixture
def plugins():
    """The three plugin processes, as CloudForet's supervisor would run their images: no store given."""
    servers = {"monitoring": MonitoringPluginServer().start(), "cost": CostPluginServer().start(),
               "collector": CollectorPluginServer().start()}
    yield servers
    for s in servers.values():
        s.stop()


def plugins_config(tmp_path, servers, emu, monkeypatch, plugin_servers, plugins_block=None, **extra) -> str:
    """A setup config with cloudforet.setup.plugins; the emulated registry holds the images and its
    supervisor runs them at the test's plugin servers."""
    for key, server in plugin_servers.items():
        emu.config.plugin_images.append({"image": f"{PLUGIN_REPOSITORY}/{IMAGES[key].name}",
                                         "versions": ["0.1.0", "0.2.0"], "endpoint": server.endpoint})
    path = setup_config(tmp_path, servers, emu, monkeypatch, **extra)
    raw = yaml.safe_load(open(path))
    raw["cloudforet"]["setup"]["plugins"] = plugins_block or PLUGINS
    with open(path, "w") as fh:
        yaml.safe_dump(raw, fh)
    return path


def plugin_state(emu) -> dict:
    return {t: emu.store.scan(t) for t in ("repository_plugins", "monitoring_data_sources", "cost_data_sources",
                                           "collectors")}


def test_setup_plugins_from_empty_then_again_changes_nothing(tmp_path, prism_servers, cloudforets, monkeypatch,
                                                              plugins):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    config = load_config(plugins_config(tmp_path, servers, emu, monkeypatch, plugins))
    lines: list[str] = []
    counts = run_setup(config, steps=STEPS + PLUGIN_STEPS, out=lines.append)
    assert counts == {"created": 14 + 3 + 1 + 1 + 1}  # setup's 14 (test_setup), 3 plugins, 2 data sources, 1 collector

    registered = {p["plugin_id"]: p for p in emu.store.scan("repository_plugins")}
    assert set(registered) == {i.name for i in IMAGES.values()}
    for image in IMAGES.values():
        p = registered[image.name]
        assert (p["image"], p["resource_type"], p["provider"]) == (
            f"{PLUGIN_REPOSITORY}/{image.name}", image.resource_type, "nutanix")
        assert p["registry_type"] == "DOCKER_HUB" and p["tags"]["icon"].startswith("https://") and p["labels"]
    (mon,) = emu.store.scan("monitoring_data_sources")
    assert mon["name"] == MONITORING_DATA_SOURCE and mon["monitoring_type"] == "METRIC"
    assert mon["plugin_info"]["plugin_id"] == IMAGES["monitoring"].name and mon["plugin_info"]["version"] == "0.2.0"
    assert mon["plugin_info"]["options"] == {"metric_store": config.metric_store_path}
    accounts = sorted(emu.store.service_accounts(), key=lambda a: a["name"])
    assert mon["plugin_info"]["secret_id"] == accounts[0]["secret_id"]  # a service account's secret
    (cost,) = emu.store.scan("cost_data_sources")
    assert (cost["name"], cost["resource_group"], cost["workspace_id"]) == (
        COST_DATA_SOURCE, "WORKSPACE", emu.config.workspace_id)
    assert cost["plugin_info"]["options"] == {"cost_store": config.cost_store_path}
    assert cost["schedule"] == {"state": "ENABLED", "hour": 16}
    (collector,) = emu.store.scan("collectors")
    assert (collector["name"], collector["provider"], collector["resource_group"]) == (
        COLLECTOR_NAME, "nutanix", "WORKSPACE")
    assert collector["schedule"] == {"state": "ENABLED", "hours": [3, 15]}
    assert collector["secret_filter"] == {"state": "DISABLED"}  # every Nutanix secret of its workspace
    assert collector["plugin_info"]["version"] == "0.2.0" and collector["plugin_info"]["metadata"]  # init ran
    assert any("Plugin.register" in line for line in lines)

    before = plugin_state(emu)
    again: list[str] = []
    counts = run_setup(config, steps=STEPS + PLUGIN_STEPS, out=again.append)
    assert not counts["created"] and not counts["updated"]
    assert plugin_state(emu) == before
    assert again[-1].startswith("setup: nothing to change")


def test_setup_plugins_dry_run_prints_the_calls_and_changes_nothing(tmp_path, prism_servers, cloudforets,
                                                                    monkeypatch, plugins):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    config = load_config(plugins_config(tmp_path, servers, emu, monkeypatch, plugins))
    lines: list[str] = []
    counts = run_setup(config, steps=PLUGIN_STEPS, dry_run=True, out=lines.append)
    assert counts["created"] == 3 + 1 + 1 + 1
    assert all(not rows for rows in plugin_state(emu).values())
    calls = [line.split()[2] for line in lines if line.startswith("  would call")]
    assert calls == ["Plugin.register"] * 3 + ["monitoring", "Collector.create", "cost"]
    assert "nothing was changed" in lines[-1]


def test_the_collector_and_the_cost_data_source_run_through_what_setup_registered(
        tmp_path, prism_servers, cloudforets, monkeypatch, plugins):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    path = plugins_config(tmp_path, servers, emu, monkeypatch, plugins)
    run_setup(load_config(path), steps=STEPS + PLUGIN_STEPS, out=lambda line: None)
    assert run(["--config", path, "--collected-at", COLLECTED_AT]) == 0  # writes the stores the plugins read
    md = [("token", emu.app_token())]
    with grpc.insecure_channel(emu.endpoint) as ch:
        (collector,) = collector_pb2_grpc.CollectorStub(ch).list(
            collector_pb2.CollectorQuery(name=COLLECTOR_NAME), metadata=md).results
        started = collector_pb2_grpc.CollectorStub(ch).collect(
            collector_pb2.CollectRequest(collector_id=collector.collector_id), metadata=md)
        job = emu.collector_jobs.wait(started.job_id, timeout=120)
        assert job["status"] == "SUCCESS" and job["total_tasks"] == len(servers)
        (cost,) = cost_ds_grpc.DataSourceStub(ch).list(cost_ds_pb2.DataSourceQuery(name=COST_DATA_SOURCE),
                                                       metadata=md).results
        synced = MessageToDict(cost_ds_grpc.DataSourceStub(ch).sync(
            cost_ds_pb2.SyncDataSourceRequest(data_source_id=cost.data_source_id), metadata=md),
            preserving_proto_field_name=True)
        assert synced["status"] == "SUCCESS" and synced["total_tasks"] >= 1
    costs = [c for c in emu.store.costs() if c["data_source_id"] == cost.data_source_id]
    assert costs and {c["billed_date"] for c in costs} == {COLLECTED_AT[:10]}


def test_setup_plugins_calls_with_the_role_each_service_requires(tmp_path, prism_servers, cloudforets,
                                                                 monkeypatch, plugins):
    """Plugin.register and monitoring DataSource.register need DOMAIN_ADMIN: a workspace credential in
    domain_admin's place is refused, naming the role and what it was needed for."""
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    path = plugins_config(tmp_path, servers, emu, monkeypatch, plugins,
                          domain_admin={"token_env": "TEST_CF_TOKEN"})
    with pytest.raises(SetupError) as err:
        run_setup(load_config(path), steps=PLUGIN_STEPS, out=lambda line: None)
    assert "DOMAIN_ADMIN" in str(err.value) and "Repository" in str(err.value)
    assert not emu.store.scan("repository_plugins")


def test_setup_plugins_config_is_checked_at_start(tmp_path, prism_servers, cloudforets, monkeypatch, plugins):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    too_long = {"image_repository": "nutanix", "collector_hours": [1, 2, 3]}
    with pytest.raises(ConfigError, match="collector_hours"):
        load_config(plugins_config(tmp_path, servers, emu, monkeypatch, plugins, too_long))
    bad_repo = {"image_repository": "nutanix:latest"}
    with pytest.raises(ConfigError, match="image_repository"):
        load_config(plugins_config(tmp_path, servers, emu, monkeypatch, plugins, bad_repo, name="c2.yaml"))


def test_cli_setup_plugins_without_the_plugins_block_says_what_to_add(tmp_path, prism_servers, cloudforets,
                                                                      monkeypatch):
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    path = setup_config(tmp_path, servers, emu, monkeypatch)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "setup", "--config", path, "--plugins", "--dry-run"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "cloudforet.setup.plugins is missing" in proc.stderr and "image_repository" in proc.stderr


def test_setup_plugins_takes_the_schemas_filter_an_earlier_setup_made_off_the_collector(
        tmp_path, prism_servers, cloudforets, monkeypatch, plugins):
    """An earlier setup --plugins gave the Collector ``secret_filter.schemas``, which makes every collect
    fail (emulators/cloudforet/collecting.py SCHEMA_FILTER_REFUSED): setup takes it off, keeps the rest."""
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    config = load_config(plugins_config(tmp_path, servers, emu, monkeypatch, plugins))
    run_setup(config, steps=STEPS + PLUGIN_STEPS, out=lambda line: None)
    (collector,) = emu.store.scan("collectors")
    old = {"state": "ENABLED", "schemas": ["nutanix-secret-prism-central"], "service_accounts": ["sa-kept"]}
    emu.store.replace("collectors", collector["collector_id"], {**collector, "secret_filter": old})
    lines: list[str] = []
    assert run_setup(config, steps=PLUGIN_STEPS, out=lines.append) == {"updated": 1, "unchanged": 5}
    assert any(line.startswith("  Collector.update") and "secret_filter" in line for line in lines)
    (collector,) = emu.store.scan("collectors")
    assert collector["secret_filter"] == {"state": "ENABLED", "service_accounts": ["sa-kept"]}
    assert collector["schedule"] == {"state": "ENABLED", "hours": [3, 15]}  # left as it was


def test_setup_plugins_updates_a_plugin_whose_labels_changed_and_refuses_another_image(
        tmp_path, prism_servers, cloudforets, monkeypatch, plugins):
    from spaceone.api.repository.v1 import plugin_pb2, plugin_pb2_grpc

    from tests.helpers import domain_admin_md
    servers = prism_servers(SPEC)
    emu = cloudforets("cf")
    config = load_config(plugins_config(tmp_path, servers, emu, monkeypatch, plugins))
    run_setup(config, steps=PLUGIN_STEPS[:1], out=lambda line: None)
    cost_id = IMAGES["cost"].name
    with grpc.insecure_channel(emu.endpoint) as ch:  # someone edits the plugin in the Repository
        plugin_pb2_grpc.PluginStub(ch).update(plugin_pb2.UpdatePluginRequest(plugin_id=cost_id, name="renamed"),
                                              metadata=domain_admin_md(emu))
    lines: list[str] = []
    counts = run_setup(config, steps=PLUGIN_STEPS[:1], out=lines.append)
    assert counts["updated"] == 1 and counts["unchanged"] == 2
    assert any(line.startswith("  Plugin.update") and '"name": "Nutanix Cost Data Source"' in line for line in lines)
    held = {p["plugin_id"]: p for p in emu.store.scan("repository_plugins")}
    assert held[cost_id]["name"] == "Nutanix Cost Data Source"
    moved = load_config(plugins_config(tmp_path, servers, emu, monkeypatch, {},
                                       plugins_block={"image_repository": "elsewhere"}, name="moved.yaml"))
    with pytest.raises(SetupError, match="cannot change a plugin's image"):
        run_setup(moved, steps=PLUGIN_STEPS[:1], out=lambda line: None)
