"""The plugin images: what each one is called, registered as, and runs.

One place for what the build files (``plugin/images/<name>/Dockerfile``), the
registration (``pipeline setup --plugins``) and the tests need, so the
command an image starts is the command the tests start (a test parses each
build file and compares).

- **Port**: CloudForet's supervisor maps every plugin container's port 50051
  (cloudforet-io/supervisor ``service/supervisor_service.py``
  ``install_plugin``: ``target_port = 50051``; Kubernetes:
  ``connector/kubernetes_connector.py`` ``_create_deployment``,
  ``containerPort: 50051`` and a ``tcpSocket`` liveness probe on it). The
  server binds all interfaces there, since the cluster reaches it from outside
  the container.
- **Options**: the image takes no paths of ours; each call carries the data
  source's ``plugin_info.options`` (``store_options``).
- **Image names**: the repository keeps ``plugin_id`` = the image's last path
  segment, at most 48 characters of ``[a-zA-Z0-9-]`` (cloudforet-io/repository
  ``service/plugin_service.py``: ``MAX_IMAGE_NAME_LENGTH = 48``,
  ``_check_image``, ``_get_image_name``), and monitoring and cost-analysis
  store ``plugin_info.plugin_id`` in 40 characters (their
  ``model/data_source_model.py`` ``PluginInfo.plugin_id max_length=40``);
  the names follow CloudForet's own (``plugin-azure-inven-collector``,
  ``plugin-azure-monitor-mon-datasource``, ``plugin-azure-cost-mgmt-cost-datasource``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.identity import SECRET_SCHEMA_ID

SUPERVISOR_PLUGIN_PORT = 50051
LISTEN_HOST = "0.0.0.0"  # noqa: S104 - inside the container: the supervisor maps the port from outside
MAX_IMAGE_NAME_LENGTH = 48  # repository PluginService._check_image
MAX_PLUGIN_ID_LENGTH = 40  # monitoring / cost-analysis DataSource PluginInfo.plugin_id
IMAGE_NAME = re.compile(r"^[a-zA-Z0-9-]+$")
VERSION = "0.1.0"
ENTRYPOINT = ("python", "-m", "plugin")


@dataclass(frozen=True)
class PluginImage:
    """One plugin image: its build file, the protocol it serves, and how the repository lists it."""

    key: str  # directory under plugin/images/
    protocol: str  # `python -m plugin <protocol>`
    name: str  # image name = plugin_id (last path segment)
    resource_type: str  # repository.Plugin resource_type
    display_name: str
    capability: dict
    labels: tuple[str, ...]

    @property
    def dockerfile(self) -> str:
        return f"plugin/images/{self.key}/Dockerfile"

    def cmd(self, port: int = SUPERVISOR_PLUGIN_PORT) -> list[str]:
        """The image's CMD (after the ENTRYPOINT); a test may change only the port."""
        return [self.protocol, "--host", LISTEN_HOST, "--port", str(port)]

    def command(self, port: int = SUPERVISOR_PLUGIN_PORT) -> list[str]:
        """The whole command the container runs: ENTRYPOINT + CMD."""
        return [*ENTRYPOINT, *self.cmd(port)]


ICON = "https://www.nutanix.com/content/dam/nutanix/global/logos/nutanix-logo-icon.svg"

IMAGES: dict[str, PluginImage] = {
    "collector": PluginImage(
        key="collector", protocol="collector", name="plugin-nutanix-inven-collector",
        resource_type="inventory.Collector", display_name="Nutanix Prism Central Collector",
        capability={}, labels=("Compute", "Storage", "Nutanix")),
    "monitoring": PluginImage(
        key="monitoring", protocol="monitoring", name="plugin-nutanix-mon-datasource",
        resource_type="monitoring.DataSource", display_name="Nutanix Metrics Data Source",
        # monitoring DataSourceService._check_plugin_capability: monitoring_type METRIC|LOG and
        # supported_schema are required; register copies monitoring_type from here
        capability={"monitoring_type": "METRIC", "supported_schema": [SECRET_SCHEMA_ID],
                    "use_resource_secret": False, "supported_providers": ["nutanix"]},
        labels=("Monitoring", "Nutanix")),
    "cost": PluginImage(
        key="cost", protocol="cost", name="plugin-nutanix-cost-datasource",
        resource_type="cost_analysis.DataSource", display_name="Nutanix Cost Data Source",
        capability={}, labels=("Cost", "Nutanix")),
}


def check_image_name(image: str) -> str:
    """The plugin_id the repository derives from ``image``; ValueError saying what to change if it refuses it."""
    name = image.rsplit("/", 1)[-1]
    if ":" in name:
        raise ValueError(f"image {image!r}: give the image without a tag (the version is the registry's tag)")
    if len(name) > MAX_IMAGE_NAME_LENGTH:
        raise ValueError(f"image {image!r}: its name {name!r} has {len(name)} characters; the repository allows "
                         f"at most {MAX_IMAGE_NAME_LENGTH}")
    if not IMAGE_NAME.match(name):
        raise ValueError(f"image {image!r}: its name {name!r} may hold only letters, digits and '-'")
    if len(name) > MAX_PLUGIN_ID_LENGTH:
        raise ValueError(f"image {image!r}: its name (the plugin_id) has {len(name)} characters; data sources "
                         f"keep at most {MAX_PLUGIN_ID_LENGTH}")
    return name
