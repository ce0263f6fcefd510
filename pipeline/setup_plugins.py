"""``python -m pipeline setup --plugins``: the plugins installed the CloudForet way.

Steps appended to ``pipeline.setup.STEPS`` (each with the credential its role needs, each reading
first and writing only what is missing or differs, printed and skipped under ``--dry-run``):

1. ``plugins`` (DOMAIN_ADMIN): the three images in the Repository (repository.v1 ``Plugin.list``
   then ``Plugin.register``, or ``Plugin.update`` of a name, capability, labels or tags that differ;
   an image registered under the same plugin_id with another image path is an error: the repository
   cannot change an image, deregister it first);
2. ``monitoring_data_source`` (DOMAIN_ADMIN: monitoring's ``DataSource.register`` allows only it):
   registered by plugin_info with the metric store as options and a ``secret_id``;
3. ``collector`` (WORKSPACE_OWNER): inventory ``Collector.create`` (plugin_info, schedule, provider,
   secret filter on the provider's SECRET schema) in the workspace;
4. ``cost_data_source`` (WORKSPACE_OWNER): cost-analysis ``DataSource.register`` in the workspace
   (``resource_group WORKSPACE``: its users see the costs), the cost store as options.

What each call carries comes from ``pipeline.plugin_definitions``.
"""
from __future__ import annotations

from typing import Any

from google.protobuf.json_format import ParseDict
from spaceone.api.cost_analysis.v1 import data_source_pb2 as cost_ds_pb2
from spaceone.api.inventory.v1 import collector_pb2
from spaceone.api.monitoring.v1 import data_source_pb2 as mon_ds_pb2
from spaceone.api.repository.v1 import plugin_pb2

from connectors.cloudforet import CloudForetClient, to_dict
from pipeline.plugin_definitions import (
    COLLECTOR_NAME,
    COST_DATA_SOURCE,
    MONITORING_DATA_SOURCE,
    PluginsOptions,
    collector_request,
    cost_request,
    monitoring_request,
    plugin_registration,
)
from pipeline.setup import DOMAIN_ADMIN, WORKSPACE_OWNER, SetupError, SetupRun, Step
from plugin.collector.reading import address_of
from plugin.images import IMAGES
from schemas.identity import PROVIDER
from transforms.settings import Config

UPDATABLE = ("name", "capability", "labels", "tags")
SCHEMA_FILTERS = ("schemas", "exclude_schemas")  # repository Plugin model updatable_fields we set


def options_of(config: Config) -> PluginsOptions:
    options = config.setup.plugins
    if options is None:
        raise SetupError("cloudforet.setup.plugins is missing: --plugins registers the plugin images, so it needs "
                         "at least cloudforet.setup.plugins.image_repository (where the images were pushed, e.g. "
                         "'myorg' on Docker Hub; see README, 'Install the plugins into CloudForet')")
    return options


def ensure_plugins(ctx: SetupRun, client: CloudForetClient) -> None:
    """repository.v1 Plugin.list by plugin_id, then Plugin.register of what is missing."""
    options = options_of(ctx.config)
    stub = client.repository_plugin
    for image in IMAGES.values():
        wanted = plugin_registration(options, image)
        held = client.call(stub.list, plugin_pb2.PluginQuery(plugin_id=wanted["plugin_id"]),
                           f"Plugin.list({wanted['plugin_id']})").results
        if held and held[0].image != wanted["image"]:
            raise SetupError(f"plugin {wanted['plugin_id']} is registered with image {held[0].image}, not "
                             f"{wanted['image']}: the repository cannot change a plugin's image; deregister it "
                             "(repository Plugin.deregister) and run setup --plugins again", 1)
        if held:
            have = to_dict(held[0])
            changed = [k for k in UPDATABLE if wanted[k] != have.get(k, [] if k == "labels" else {})]
            if not changed:
                ctx.unchanged(f"plugin {wanted['plugin_id']} ({wanted['resource_type']})")
                continue
            update = {"plugin_id": wanted["plugin_id"], **{k: wanted[k] for k in changed}}

            def do_update(u: dict = update) -> Any:
                return client.call(stub.update, ParseDict(u, plugin_pb2.UpdatePluginRequest()),
                                   f"Plugin.update({u['plugin_id']})")

            ctx.write("Plugin.update", update, do_update, "updated")
            continue
        request = ParseDict(wanted, plugin_pb2.RegisterPluginRequest())

        def register(r: Any = request, plugin_id: str = wanted["plugin_id"]) -> Any:
            return client.call(stub.register, r, f"Plugin.register({plugin_id})")

        ctx.write("Plugin.register", wanted, register, "created")


def monitoring_secret_id(ctx: SetupRun, client: CloudForetClient, options: PluginsOptions) -> str:
    """The secret Monitoring passes to the plugin: the configured one, else the secret of the provider's
    first service account (the plugin reads the metric store; Monitoring reads a secret regardless)."""
    if options.monitoring_secret_id:
        return options.monitoring_secret_id
    accounts = [sa for sa in client.list_service_accounts(PROVIDER) if sa.get("secret_id")]
    if accounts:
        return str(sorted(accounts, key=lambda sa: sa.get("name", ""))[0]["secret_id"])
    if ctx.dry_run:
        return "<the secret of the first nutanix service account>"
    raise SetupError("the monitoring data source needs a secret_id (Monitoring reads the data source's secret for "
                     "every Metric call) and no nutanix service account has one: run setup (without --plugins "
                     "first) to make the service accounts, or set cloudforet.setup.plugins.monitoring_secret_id", 2)


def ensure_monitoring_data_source(ctx: SetupRun, client: CloudForetClient) -> None:
    """monitoring.v1 DataSource.list by name, then DataSource.register by plugin_info."""
    options = options_of(ctx.config)
    stub = client.monitoring_data_source
    held = client.call(stub.list, mon_ds_pb2.DataSourceQuery(name=MONITORING_DATA_SOURCE),
                       "monitoring DataSource.list").results
    if held:
        ctx.unchanged(f"monitoring data source {MONITORING_DATA_SOURCE!r} ({held[0].data_source_id})")
        return
    wanted = monitoring_request(options, ctx.config.metric_store_path, monitoring_secret_id(ctx, client, options))
    request = ParseDict(wanted, mon_ds_pb2.RegisterDataSourceRequest())
    made = ctx.write("monitoring DataSource.register", wanted, lambda: client.call(
        stub.register, request, "monitoring DataSource.register"), "created")
    if made is not None:
        ctx.out(f"    data source {made.data_source_id} (plugin {made.plugin_info.plugin_id} "
                f"{made.plugin_info.version})")


def ensure_collector(ctx: SetupRun, client: CloudForetClient) -> None:
    """inventory.v1 Collector.list by name, then Collector.create (Inventory resolves the plugin through
    the repository and the plugin service and calls its init), or Collector.update of its schedule and
    of a secret filter by schemas (plugin_definitions.collector_request says why it has none)."""
    options = options_of(ctx.config)
    stub = client.collector
    names = {address_of({"nutanix_host": a.host, "nutanix_port": a.port}): a.name
             for a in ctx.config.accounts if a.host}
    wanted = collector_request(options, names)
    held = client.call(stub.list, collector_pb2.CollectorQuery(name=COLLECTOR_NAME), "Collector.list").results
    if not held:
        request = ParseDict(wanted, collector_pb2.CreateCollectorRequest())
        made = ctx.write("Collector.create", wanted, lambda: client.call(stub.create, request, "Collector.create"),
                         "created")
        if made is not None:
            ctx.out(f"    collector {made.collector_id} (plugin {made.plugin_info.plugin_id} "
                    f"{made.plugin_info.version})")
        return
    collector = to_dict(held[0])
    update: dict = {"collector_id": collector["collector_id"]}
    have = collector.get("schedule", {})
    if have.get("state") != "ENABLED" or list(have.get("hours", [])) != wanted["schedule"]["hours"]:
        update["schedule"] = wanted["schedule"]
    held_filter = collector.get("secret_filter") or {}
    if held_filter.get("state") == "ENABLED" and any(held_filter.get(k) for k in SCHEMA_FILTERS):
        # what an earlier setup made: Secret.list refuses a filter on schemas, so every collect failed
        update["secret_filter"] = {k: v for k, v in held_filter.items() if k not in SCHEMA_FILTERS}
    if len(update) == 1:
        ctx.unchanged(f"collector {COLLECTOR_NAME!r} ({collector['collector_id']})")
        return
    ctx.write("Collector.update", update, lambda: client.call(
        stub.update, ParseDict(update, collector_pb2.UpdateCollectorRequest()), "Collector.update"), "updated")


def ensure_cost_data_source(ctx: SetupRun, client: CloudForetClient) -> None:
    """cost_analysis.v1 DataSource.list by name, then DataSource.register in the workspace."""
    options = options_of(ctx.config)
    stub = client.cost_data_source
    held = client.call(stub.list, cost_ds_pb2.DataSourceQuery(name=COST_DATA_SOURCE),
                       "cost DataSource.list").results
    if held:
        ctx.unchanged(f"cost data source {COST_DATA_SOURCE!r} ({held[0].data_source_id})")
        return
    wanted = cost_request(options, ctx.config.cost_store_path, ctx.config.cloudforet.auth.workspace_id,
                          options.cost_sync_hour)
    request = ParseDict(wanted, cost_ds_pb2.RegisterDataSourceRequest())
    made = ctx.write("cost DataSource.register", wanted, lambda: client.call(
        stub.register, request, "cost DataSource.register"), "created")
    if made is not None:
        ctx.out(f"    data source {made.data_source_id} (plugin {made.plugin_info.plugin_id} "
                f"{made.plugin_info.version})")


PLUGIN_STEPS: list[Step] = [
    Step("plugins", DOMAIN_ADMIN, lambda c: "the plugins in the Repository (repository Plugin.register)",
         ensure_plugins),
    Step("monitoring_data_source", DOMAIN_ADMIN,
         lambda c: f"the monitoring data source {MONITORING_DATA_SOURCE!r}", ensure_monitoring_data_source),
    Step("collector", WORKSPACE_OWNER, lambda c: f"the Collector {COLLECTOR_NAME!r}", ensure_collector),
    Step("cost_data_source", WORKSPACE_OWNER, lambda c: f"the cost data source {COST_DATA_SOURCE!r}",
         ensure_cost_data_source),
]
PLUGIN_SERVICES = ["repository", "monitoring", "cost_analysis"]  # besides identity and inventory
