"""The container registry and the supervisor, as far as the emulator needs them.

A real CloudForet asks the registry for an image's tags (cloudforet-io/repository
``connector/registry_connector.py`` ``get_tags``: Plugin.register fails with
ERROR_NO_IMAGE_IN_REGISTRY when there are none, ``get_versions`` lists them)
and has its supervisor run ``{registry_url}/{image}:{version}`` with port
50051 mapped (cloudforet-io/supervisor ``service/supervisor_service.py``
``install_plugin``), answering ``grpc://HOST:PORT``. No Docker runs here, so
the configuration's ``plugin_images`` says both: which tags an image has, and
where a plugin process the tests (or run.sh) started serves it.
"""
from __future__ import annotations

import json
import re

from .config import EmulatorConfig

_RELEASE = re.compile(r"^v?(\d+(?:\.\d+)*)$")


def _entry(config: EmulatorConfig, image: str) -> dict | None:
    return next((e for e in config.plugin_images if e.get("image") == image), None)


def _version_key(tag: str) -> tuple:
    """Release tags (1.2.10) by their numbers, above anything else (by name): packaging's order for them."""
    m = _RELEASE.match(tag)
    return (1, tuple(int(p) for p in m.group(1).split(".")), "") if m else (0, (), tag)


def tags(config: EmulatorConfig, image: str) -> list[str]:
    """The image's tags, newest first (HarborConnector.get_tags sorts by
    ``packaging.version.parse``, reversed; releases are compared by their numbers here too)."""
    entry = _entry(config, image)
    if entry is None:
        return []
    return sorted((str(v) for v in entry.get("versions", [])), key=_version_key, reverse=True)


def running_endpoint(config: EmulatorConfig, image: str) -> str | None:
    """``grpc://HOST:PORT`` of the plugin process serving ``image``, or None if no supervisor can run it."""
    entry = _entry(config, image)
    if entry is None:
        return None
    endpoint = str(entry.get("endpoint") or "")
    if not endpoint and entry.get("ready_file"):
        try:
            with open(entry["ready_file"], encoding="utf-8") as fh:
                endpoint = str(json.load(fh).get("endpoint") or "")
        except (OSError, ValueError):
            return None  # not started (yet): as a supervisor that cannot start it
    if not endpoint:
        return None
    return endpoint if "://" in endpoint else f"grpc://{endpoint}"
