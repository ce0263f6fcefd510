"""Plugins the CloudForet way, on the emulator: images registered in the Repository, the plugin service
saying where each runs, data sources registered by plugin_info — and the images' own command serving.

What the real services do is cited where the emulator follows it (emulators/cloudforet/
repository_service.py, plugin_service.py, monitoring_service.py, cost_datasource_service.py)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict, ParseDict
from spaceone.api.cost_analysis.v1 import cost_pb2, cost_pb2_grpc
from spaceone.api.cost_analysis.v1 import data_source_pb2 as cost_ds_pb2
from spaceone.api.cost_analysis.v1 import data_source_pb2_grpc as cost_ds_grpc
from spaceone.api.inventory.v1 import cloud_service_pb2, cloud_service_pb2_grpc
from spaceone.api.monitoring.v1 import data_source_pb2 as mon_ds_pb2
from spaceone.api.monitoring.v1 import data_source_pb2_grpc as mon_ds_grpc
from spaceone.api.monitoring.v1 import metric_pb2, metric_pb2_grpc
from spaceone.api.plugin.v1 import plugin_pb2 as endpoint_pb2
from spaceone.api.plugin.v1 import plugin_pb2_grpc as endpoint_grpc
from spaceone.api.repository.v1 import plugin_pb2, plugin_pb2_grpc

from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from pipeline.plugin_definitions import PluginsOptions, cost_request, monitoring_request, plugin_registration
from plugin.images import IMAGES
from plugin.server import MonitoringPluginServer
from tests.helpers import (
    MON_SECRET_ID,
    cost_records,
    domain_admin_md,
    make_points,
    wait_ready,
    workspace_owner_md,
    write_costs,
    write_metric_run,
)

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-11-28"
OPTIONS = PluginsOptions(image_repository="nutanix")


def _s(d: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


@pytest.fixture
def emu(tmp_path):
    config = EmulatorConfig(secrets={MON_SECRET_ID: {"nutanix_host": "pc.example.com"}})
    with CloudForetEmulator(str(tmp_path / "cf.sqlite"), config) as emu:
        yield emu


def registration(key: str, **changes) -> plugin_pb2.RegisterPluginRequest:
    return ParseDict({**plugin_registration(OPTIONS, IMAGES[key]), **changes}, plugin_pb2.RegisterPluginRequest())


def in_registry(emu, key: str, versions=("0.1.0",), **where) -> None:
    emu.config.plugin_images.append({"image": OPTIONS.image(IMAGES[key]), "versions": list(versions), **where})


def create_vm(ch: grpc.Channel, emu, vm: str) -> None:
    """The VM in inventory: Monitoring asks the plugin only about resources inventory has."""
    cloud_service_pb2_grpc.CloudServiceStub(ch).create(cloud_service_pb2.CreateServiceRequest(
        cloud_service_type="Instance", cloud_service_group="VM", provider="nutanix", name=vm, region_code="c-1",
        reference=cloud_service_pb2.CloudServiceReference(resource_id=vm)), metadata=workspace_owner_md(emu))


def rpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def test_plugin_register_as_the_repository_does(emu):
    """repository PluginService.register: DOMAIN_ADMIN; plugin_id = image name; registry settings are the
    repository's (REGISTRY_INFO), not the caller's; get_versions newest first."""
    in_registry(emu, "cost", versions=("0.1.0", "0.10.0", "0.2.0"))
    with grpc.insecure_channel(emu.endpoint) as ch:
        stub = plugin_pb2_grpc.PluginStub(ch)
        admin, owner = domain_admin_md(emu), workspace_owner_md(emu)
        request = registration("cost", registry_config={"url": "mine.example.com"})
        assert rpc_error(lambda: stub.register(request, metadata=owner)).code() == grpc.StatusCode.PERMISSION_DENIED
        info = MessageToDict(stub.register(request, metadata=admin), preserving_proto_field_name=True)
        assert info["plugin_id"] == "plugin-nutanix-cost-datasource" and info["state"] == "ENABLED"
        assert info["image"] == "nutanix/plugin-nutanix-cost-datasource"
        assert info["resource_type"] == "cost_analysis.DataSource" and info["provider"] == "nutanix"
        assert info["registry_type"] == "DOCKER_HUB" and info["registry_url"] == "registry.hub.docker.com"
        assert info["registry_config"] == {"url": "registry.hub.docker.com"}
        assert info["repository_info"]["repository_type"] == "LOCAL"
        assert info["labels"] == ["Cost", "Nutanix"] and info["tags"]["icon"].startswith("https://")
        got = stub.get(plugin_pb2.RepositoryPluginRequest(plugin_id=info["plugin_id"]), metadata=owner)
        assert got.image == info["image"]
        versions = stub.get_versions(plugin_pb2.RepositoryPluginRequest(plugin_id=info["plugin_id"]), metadata=owner)
        assert list(versions.results) == ["0.10.0", "0.2.0", "0.1.0"]
        listed = stub.list(plugin_pb2.PluginQuery(resource_type="cost_analysis.DataSource"), metadata=owner)
        assert [p.plugin_id for p in listed.results] == [info["plugin_id"]] and listed.total_count == 1
        assert stub.list(plugin_pb2.PluginQuery(resource_type="inventory.Collector"), metadata=owner).total_count == 0
        err = rpc_error(lambda: stub.register(request, metadata=admin))
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS and "ERROR_SAVE_UNIQUE_VALUES" in err.details()
        err = rpc_error(lambda: stub.get(plugin_pb2.RepositoryPluginRequest(plugin_id="nope"), metadata=owner))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == "ERROR_NO_PLUGIN: Plugin does not exists. (plugin_id = nope)"


@pytest.mark.parametrize("changes, code, error", [
    ({"image": "nutanix/" + "p" * 49}, grpc.StatusCode.INVALID_ARGUMENT, "ERROR_INVALID_IMAGE_LENGTH"),
    ({"image": "nutanix/plugin_nutanix"}, grpc.StatusCode.INVALID_ARGUMENT, "ERROR_INVALID_IMAGE_NAME_FORMAT"),
    ({"registry_type": "HARBOR"}, grpc.StatusCode.INTERNAL, "ERROR_REGISTRY_SETTINGS"),  # no url configured
    ({"image": "nutanix/not-pushed"}, grpc.StatusCode.INTERNAL, "ERROR_NO_IMAGE_IN_REGISTRY"),
    ({"name": ""}, grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REQUIRED_PARAMETER: key = name"),
])
def test_plugin_register_refuses_what_the_repository_refuses(emu, changes, code, error):
    in_registry(emu, "cost")
    with grpc.insecure_channel(emu.endpoint) as ch:
        stub = plugin_pb2_grpc.PluginStub(ch)
        request = registration("cost", **{"plugin_id": "", **changes})
        err = rpc_error(lambda: stub.register(request, metadata=domain_admin_md(emu)))
        assert err.code() == code and error in err.details()
        assert stub.list(plugin_pb2.PluginQuery(), metadata=domain_admin_md(emu)).total_count == 0  # nothing kept


def test_plugin_service_says_where_a_registered_plugin_runs(emu, tmp_path):
    """plugin PluginService.get_plugin_endpoint (no token: an internal API): AUTO takes the newest tag,
    MANUAL needs a version that exists, the supervisor must be able to run the image."""
    ready = tmp_path / "plugin-cost.json"
    in_registry(emu, "cost", versions=("0.1.0", "0.2.0"), ready_file=str(ready))
    in_registry(emu, "monitoring")  # in the registry, but no supervisor runs it
    with grpc.insecure_channel(emu.endpoint) as ch:
        for key in ("cost", "monitoring"):
            plugin_pb2_grpc.PluginStub(ch).register(registration(key), metadata=domain_admin_md(emu))
        lookup = endpoint_grpc.PluginStub(ch).get_plugin_endpoint
        auto = endpoint_pb2.PluginEndpointRequest.UpgradeMode.AUTO
        cost_id, mon_id = IMAGES["cost"].name, IMAGES["monitoring"].name

        def ask(**fields):
            return lookup(endpoint_pb2.PluginEndpointRequest(domain_id=emu.config.domain_id, **fields))

        err = rpc_error(lambda: ask(plugin_id=cost_id, upgrade_mode=auto))  # not started yet
        assert "ERROR_NO_POSSIBLE_SUPERVISOR" in err.details()
        ready.write_text(json.dumps({"endpoint": "127.0.0.1:50999"}))
        answer = ask(plugin_id=cost_id, upgrade_mode=auto)
        assert (answer.endpoint, answer.updated_version) == ("grpc://127.0.0.1:50999", "0.2.0")
        assert ask(plugin_id=cost_id, version="0.1.0").updated_version == "0.1.0"
        err = rpc_error(lambda: ask(plugin_id=cost_id))  # MANUAL (the default) without a version
        assert err.details() == "ERROR_REQUIRED_PARAMETER: key = version"
        err = rpc_error(lambda: ask(plugin_id=cost_id, version="9.9.9"))
        assert err.details() == f"ERROR_INVALID_PLUGIN_VERSION: version:9.9.9 of {cost_id} does not exist"
        err = rpc_error(lambda: ask(plugin_id="plugin-unknown", version="0.1.0"))
        assert "ERROR_PLUGIN_NOT_FOUND" in err.details()  # MANUAL: _check_plugin
        err = rpc_error(lambda: ask(plugin_id="plugin-unknown", upgrade_mode=auto))
        assert "ERROR_NO_PLUGIN" in err.details()  # AUTO: the repository's get_versions answers first
        err = rpc_error(lambda: ask(plugin_id=mon_id, upgrade_mode=auto))
        assert "ERROR_NO_POSSIBLE_SUPERVISOR" in err.details()


def test_monitoring_register_takes_a_repository_plugin_as_the_real_service_does(emu, tmp_path):
    """monitoring DataSourceService.register: DOMAIN_ADMIN; plugin_info.secret_id or provider; the
    capability, provider and monitoring_type from the repository; the version the plugin service ran."""
    write_metric_run(str(tmp_path / "metrics"), "20261128T0100-run", make_points(["vm-a1"], DAY))
    with MonitoringPluginServer() as plugin, grpc.insecure_channel(emu.endpoint) as ch:
        in_registry(emu, "monitoring", versions=("0.1.0", "0.3.0"), endpoint=plugin.endpoint)
        plugin_pb2_grpc.PluginStub(ch).register(registration("monitoring"), metadata=domain_admin_md(emu))
        stub = mon_ds_grpc.DataSourceStub(ch)
        request = ParseDict(monitoring_request(OPTIONS, str(tmp_path / "metrics"), MON_SECRET_ID),
                            mon_ds_pb2.RegisterDataSourceRequest())
        err = rpc_error(lambda: stub.register(request, metadata=workspace_owner_md(emu)))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        no_secret = mon_ds_pb2.RegisterDataSourceRequest(name="x", plugin_info=mon_ds_pb2.DataSourcePluginInfo(
            plugin_id=IMAGES["monitoring"].name))
        err = rpc_error(lambda: stub.register(no_secret, metadata=domain_admin_md(emu)))
        assert err.details() == "ERROR_REQUIRED_PARAMETER: key = plugin_info.[secret_id | provider]"
        info = MessageToDict(stub.register(request, metadata=domain_admin_md(emu)), preserving_proto_field_name=True)
        assert info["monitoring_type"] == "METRIC" and info["provider"] == "nutanix"
        assert info["capability"]["supported_schema"] == ["nutanix-secret-prism-central"]  # the SECRET schema
        assert info["plugin_info"]["version"] == "0.3.0" and info["plugin_info"]["secret_id"] == MON_SECRET_ID
        assert info["plugin_info"]["metadata"]["required_keys"] == ["reference"]
        err = rpc_error(lambda: stub.register(request, metadata=domain_admin_md(emu)))
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS  # name unique in the domain
        # provider instead of a secret: registered, but every Metric call then lacks the secret
        by_provider = mon_ds_pb2.RegisterDataSourceRequest(name="y", plugin_info=mon_ds_pb2.DataSourcePluginInfo(
            plugin_id=IMAGES["monitoring"].name, provider="nutanix", options=_s({"store": str(tmp_path)}),
            upgrade_mode=mon_ds_pb2.DataSourcePluginInfo.UpgradeMode.AUTO))
        ds_id = stub.register(by_provider, metadata=domain_admin_md(emu)).data_source_id
        create_vm(ch, emu, "vm-a1")
        err = rpc_error(lambda: metric_pb2_grpc.MetricStub(ch).get_data(metric_pb2.MetricDataRequest(
            data_source_id=ds_id, metric_query=_s({"vm-a1": {}}), metric="cpu.utilization",
            start=DAY + "T00:00:00Z", end="2026-11-29T00:00:00Z"), metadata=workspace_owner_md(emu)))
        assert err.details() == "ERROR_REQUIRED_PARAMETER: key = secret_id"


def test_a_data_source_of_an_unregistered_plugin_is_refused(emu):
    with grpc.insecure_channel(emu.endpoint) as ch:
        request = ParseDict(cost_request(OPTIONS, "/out/costs", emu.config.workspace_id),
                            cost_ds_pb2.RegisterDataSourceRequest())
        err = rpc_error(lambda: cost_ds_grpc.DataSourceStub(ch).register(request, metadata=workspace_owner_md(emu)))
        assert err.details() == f"ERROR_NO_PLUGIN: Plugin does not exists. (plugin_id = {IMAGES['cost'].name})"
        no_secret = ParseDict(cost_request(OPTIONS, "/out/costs", emu.config.workspace_id),
                              cost_ds_pb2.RegisterDataSourceRequest())
        no_secret.plugin_info.ClearField("secret_data")  # secret_type MANUAL needs secret_data
        err = rpc_error(lambda: cost_ds_grpc.DataSourceStub(ch).register(no_secret, metadata=workspace_owner_md(emu)))
        assert err.details() == "ERROR_REQUIRED_PARAMETER: key = plugin_info.secret_data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def image_processes():
    """Starts a plugin exactly as its image does (plugin.images: ENTRYPOINT + CMD), on a free port."""
    started: list[subprocess.Popen] = []

    def start(key: str) -> str:
        port = free_port()
        command = IMAGES[key].command(port)
        assert command[0] == "python"  # the image's python: this interpreter here
        proc = subprocess.Popen([sys.executable, *command[1:]], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        endpoint = f"127.0.0.1:{port}"
        with grpc.insecure_channel(endpoint) as channel:
            wait_ready(channel, timeout=30)
        return endpoint

    yield start
    for proc in started:
        proc.terminate()
        assert proc.wait(timeout=30) == 0  # a clean exit on SIGTERM, as the supervisor stops it


def test_the_images_commands_serve_the_stores_their_data_sources_name(emu, tmp_path, image_processes):
    """The image commands (no --store) under CloudForet: repository, plugin service, data sources by
    plugin_info with the pipeline's stores as options; a sync and a metric read go through them."""
    out = tmp_path / "out"
    records = cost_records(["2026-11-27", DAY])
    write_costs(str(out / "costs"), "20261128T0100-run", records)
    write_metric_run(str(out / "metrics"), "20261128T0100-run", make_points(["vm-a1"], DAY))
    for key in ("monitoring", "cost"):
        in_registry(emu, key, endpoint=image_processes(key))
    with grpc.insecure_channel(emu.endpoint) as ch:
        for key in ("monitoring", "cost"):
            plugin_pb2_grpc.PluginStub(ch).register(registration(key), metadata=domain_admin_md(emu))
        cost_id = cost_ds_grpc.DataSourceStub(ch).register(ParseDict(
            cost_request(OPTIONS, f"file://{out}/costs", emu.config.workspace_id),
            cost_ds_pb2.RegisterDataSourceRequest()), metadata=workspace_owner_md(emu)).data_source_id
        ds = MessageToDict(cost_ds_grpc.DataSourceStub(ch).get(cost_ds_pb2.DataSourceRequest(data_source_id=cost_id),
                                                               metadata=workspace_owner_md(emu)),
                           preserving_proto_field_name=True)
        assert ds["resource_group"] == "WORKSPACE" and ds["workspace_id"] == emu.config.workspace_id
        assert ds["plugin_info"]["version"] == "0.1.0" and "secret_data" not in ds["plugin_info"]
        job = cost_ds_grpc.DataSourceStub(ch).sync(cost_ds_pb2.SyncDataSourceRequest(data_source_id=cost_id),
                                                   metadata=workspace_owner_md(emu))
        assert job.status == job.Status.SUCCESS, job
        listed = cost_pb2_grpc.CostStub(ch).list(cost_pb2.CostQuery(data_source_id=cost_id),
                                                 metadata=domain_admin_md(emu))
        assert listed.total_count == len(records)
        mon_id = mon_ds_grpc.DataSourceStub(ch).register(ParseDict(
            monitoring_request(OPTIONS, str(out / "metrics"), MON_SECRET_ID), mon_ds_pb2.RegisterDataSourceRequest()),
            metadata=domain_admin_md(emu)).data_source_id
        create_vm(ch, emu, "vm-a1")
        data = metric_pb2_grpc.MetricStub(ch).get_data(metric_pb2.MetricDataRequest(
            data_source_id=mon_id, metric_query=_s({"vm-a1": {}}), metric="cpu.utilization",
            start=DAY + "T00:00:00Z", end="2026-11-29T00:00:00Z", period=3600), metadata=workspace_owner_md(emu))
        assert len(data.labels) == 24 and len(data.values["vm-a1"].values) == 24


def test_a_plugin_image_command_refuses_calls_naming_no_store(image_processes):
    from spaceone.api.cost_analysis.plugin import data_source_pb2, data_source_pb2_grpc
    endpoint = image_processes("cost")
    with grpc.insecure_channel(endpoint) as ch:
        err = rpc_error(lambda: data_source_pb2_grpc.DataSourceStub(ch).init(data_source_pb2.InitRequest(
            options=_s({})), timeout=30))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "plugin_info.options 'store'" in err.details()



def test_the_collector_images_command_is_what_inventory_creates_a_collector_of(emu, image_processes):
    """inventory CollectorService.create: the plugin from the repository (its provider), the endpoint and
    version from the plugin service, the metadata from the plugin's Collector.init (the image's command)."""
    from spaceone.api.inventory.v1 import collector_pb2, collector_pb2_grpc

    from pipeline.plugin_definitions import collector_request
    in_registry(emu, "collector", versions=("0.1.0", "0.1.1"), endpoint=image_processes("collector"))
    with grpc.insecure_channel(emu.endpoint) as ch:
        plugin_pb2_grpc.PluginStub(ch).register(registration("collector"), metadata=domain_admin_md(emu))
        request = ParseDict(collector_request(OPTIONS), collector_pb2.CreateCollectorRequest())
        request.ClearField("provider")  # the repository's plugin names it
        made = MessageToDict(collector_pb2_grpc.CollectorStub(ch).create(request, metadata=workspace_owner_md(emu)),
                             preserving_proto_field_name=True)
        assert made["provider"] == "nutanix" and made["plugin_info"]["version"] == "0.1.1"
        assert made["plugin_info"]["metadata"]  # Collector.init answered through the plugin service's endpoint
        assert made["schedule"] == {"state": "ENABLED", "hours": [0, 12]}
        unknown = collector_pb2.CreateCollectorRequest(name="x", plugin_info=collector_pb2.PluginInfo(
            plugin_id="plugin-unknown"))
        err = rpc_error(lambda: collector_pb2_grpc.CollectorStub(ch).create(unknown, metadata=workspace_owner_md(emu)))
        assert err.details() == "ERROR_NO_PLUGIN: Plugin does not exists. (plugin_id = plugin-unknown)"
