"""What ``setup --plugins`` registers, as the requests CloudForet's services take.

- the three images in the Repository (repository.v1 ``Plugin.register``,
  DOMAIN_ADMIN): ``image`` is the path the supervisor pulls from the registry
  (``{registry_url}/{image}:{version}``, cloudforet-io/supervisor
  ``install_plugin``), its last segment the ``plugin_id``;
- the Collector (inventory.v1 ``Collector.create``: ``plugin_info``, a schedule
  of at most 2 hours, the provider whose service accounts' secrets it collects
  with, a secret filter on the provider's SECRET schema);
- the monitoring data source (monitoring.v1 ``DataSource.register``,
  DOMAIN_ADMIN): ``plugin_info`` with the metric store as options and a
  ``secret_id`` (the Monitoring service reads one for every Metric call);
- the cost data source (cost_analysis.v1 ``DataSource.register``): EXTERNAL,
  in the workspace (``resource_group WORKSPACE``, so its users see the costs),
  the cost store as options, secret_type MANUAL with empty secret data (the
  plugin reads the store, not Prism).

The stores are where the pipeline writes them (``metric_store.path``,
``cost_store.path``: a directory or a gs://, s3://, hdfs:// URI), so the
plugins serve what the pipeline writes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from plugin.images import ICON, IMAGES, PluginImage, check_image_name
from schemas.identity import PROVIDER

REGISTRY_TYPES = ("DOCKER_HUB", "HARBOR", "AWS_PRIVATE_ECR", "GCP_PRIVATE_GCR", "GITHUB")
COLLECTOR_NAME = "Nutanix Prism Central"
MONITORING_DATA_SOURCE = "Nutanix metrics"
COST_DATA_SOURCE = "Nutanix costs"


@dataclass(frozen=True)
class PluginsOptions:
    """``cloudforet.setup.plugins`` of the configuration."""

    image_repository: str  # e.g. "myorg" (Docker Hub) or "nutanix" (a Harbor project): image = REPO/NAME
    registry_type: str = "DOCKER_HUB"
    registry_config: dict = field(default_factory=dict)
    version: str = ""  # "" : upgrade_mode AUTO (the registry's newest tag); else pinned (MANUAL)
    collector_hours: tuple[int, ...] = (0, 12)  # UTC
    monitoring_secret_id: str = ""  # "" : the secret of the provider's first service account
    cost_sync_hour: int = 16  # the cost data source's daily sync (cost-analysis's DATA_SOURCE_SYNC_HOUR default)

    @classmethod
    def from_dict(cls, raw: dict) -> "PluginsOptions":
        hours = tuple(int(h) for h in raw.get("collector_hours", (0, 12)))
        if len(hours) > 2 or any(not 0 <= h <= 23 for h in hours):  # inventory CollectorService._check_schedule
            raise ValueError(f"cloudforet.setup.plugins.collector_hours {list(hours)}: at most 2 hours of 0-23 "
                             "(Inventory refuses more)")
        registry_type = str(raw.get("registry_type", "DOCKER_HUB"))
        if registry_type not in REGISTRY_TYPES:
            raise ValueError(f"cloudforet.setup.plugins.registry_type {registry_type!r}: one of {list(REGISTRY_TYPES)}")
        options = cls(image_repository=str(raw["image_repository"]).strip("/"), registry_type=registry_type,
                      registry_config=dict(raw.get("registry_config") or {}), version=str(raw.get("version") or ""),
                      collector_hours=hours, monitoring_secret_id=str(raw.get("monitoring_secret_id") or ""),
                      cost_sync_hour=int(raw.get("cost_sync_hour", 16)))
        for image in IMAGES.values():
            check_image_name(options.image(image))  # ValueError naming the image and the limit
        return options

    def image(self, plugin: PluginImage) -> str:
        return f"{self.image_repository}/{plugin.name}"

    def plugin_info(self, plugin: PluginImage, options: dict | None = None) -> dict:
        """``plugin_info`` of a Collector or data source: pinned to ``version``, else AUTO."""
        info: dict = {"plugin_id": plugin.name, "options": dict(options or {})}
        if self.version:
            info.update(version=self.version, upgrade_mode="MANUAL")
        else:
            info["upgrade_mode"] = "AUTO"
        return info


def plugin_registration(options: PluginsOptions, plugin: PluginImage) -> dict:
    """repository.v1 RegisterPluginRequest of one image."""
    return {
        "plugin_id": plugin.name,
        "name": plugin.display_name,
        "resource_type": plugin.resource_type,
        "image": options.image(plugin),
        "provider": PROVIDER,
        "registry_type": options.registry_type,
        "registry_config": dict(options.registry_config),
        "capability": dict(plugin.capability),
        "labels": list(plugin.labels),
        "tags": {"icon": ICON, "description": plugin.display_name},
    }


def collector_request(options: PluginsOptions, account_names: dict[str, str] | None = None) -> dict:
    """inventory.v1 CreateCollectorRequest (in the workspace of the caller's token). ``account_names``
    (Prism Central address -> the configuration's account name) becomes the plugin option of that name,
    so the collector names each Prism Central's records as the pipeline does and takes them over.

    No secret filter: the provider already keeps the collector to Nutanix secrets, and a filter by
    ``schemas`` breaks every collect (inventory lists secrets by a ``schema`` field the secret service's
    model lacks: ERROR_DB_QUERY)."""
    return {
        "name": COLLECTOR_NAME,
        "provider": PROVIDER,
        "plugin_info": options.plugin_info(IMAGES["collector"],
                                           {"account_names": dict(account_names)} if account_names else None),
        "schedule": {"state": "ENABLED", "hours": list(options.collector_hours)},
        "resource_group": "WORKSPACE",
        "tags": {"created_by": "python -m pipeline setup --plugins"},
    }


def monitoring_request(options: PluginsOptions, metric_store: str, secret_id: str) -> dict:
    """monitoring.v1 RegisterDataSourceRequest."""
    info = options.plugin_info(IMAGES["monitoring"], {"metric_store": metric_store})
    info["secret_id"] = secret_id  # the proto's oneof plugin_secret: secret_id or provider, not both
    return {"name": MONITORING_DATA_SOURCE, "plugin_info": info,
            "tags": {"created_by": "python -m pipeline setup --plugins"}}


def cost_request(options: PluginsOptions, cost_store: str, workspace_id: str, sync_hour: int = 16) -> dict:
    """cost_analysis.v1 RegisterDataSourceRequest, in the workspace."""
    info = options.plugin_info(IMAGES["cost"], {"cost_store": cost_store})
    info["secret_data"] = {}  # secret_type MANUAL needs it present; the plugin reads the store
    return {"name": COST_DATA_SOURCE, "data_source_type": "EXTERNAL", "provider": PROVIDER,
            "secret_type": "MANUAL", "plugin_info": info, "schedule": {"state": "ENABLED", "hour": sync_hour},
            "resource_group": "WORKSPACE", "workspace_id": workspace_id,
            "tags": {"created_by": "python -m pipeline setup --plugins"}}
