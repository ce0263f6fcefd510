"""The emulated CloudForet's registry and supervisor for plugin processes started here.

    python -m emulators.plugins config --ready-dir DIR --out FILE [--repository nutanix] [--version 0.1.0]

writes an emulator configuration (``EmulatorConfig.plugin_images``) saying the registry holds each
plugin image at ``version`` and its supervisor runs it where ``DIR/plugin-<key>.json`` (the
plugin's ready file) says: what ``python -m pipeline setup --plugins`` then registers and the
emulated Inventory, Monitoring and Cost Analysis reach through the plugin service.
"""
from __future__ import annotations

import argparse
import os
import sys

import grpc
import yaml
from google.protobuf.json_format import ParseDict
from spaceone.api.repository.v1 import plugin_pb2, plugin_pb2_grpc

from pipeline.plugin_definitions import PluginsOptions, plugin_registration
from plugin.images import IMAGES, VERSION

DEMO_REPOSITORY = "nutanix"
# A secret for the monitoring data source where no service account has one (the replay): Monitoring
# reads the data source's secret for every Metric call; the plugin itself reads the metric store.
METRICS_READER_SECRET = "secret-nutanix-metrics-reader"


def plugin_images(ready_files: dict[str, str], repository: str = DEMO_REPOSITORY, version: str = VERSION
                  ) -> list[dict]:
    """``plugin_images`` entries: image key (plugin.images.IMAGES) -> the ready file of its process."""
    options = PluginsOptions(image_repository=repository)
    return [{"image": options.image(IMAGES[key]), "versions": [version], "ready_file": os.path.abspath(path)}
            for key, path in ready_files.items()]


def register(channel: grpc.Channel, domain_admin_token: str, keys: list[str], repository: str = DEMO_REPOSITORY
             ) -> dict[str, str]:
    """repository.v1 Plugin.register of each image, as setup --plugins registers it: key -> plugin_id."""
    options = PluginsOptions(image_repository=repository)
    stub = plugin_pb2_grpc.PluginStub(channel)
    out = {}
    for key in keys:
        request = ParseDict(plugin_registration(options, IMAGES[key]), plugin_pb2.RegisterPluginRequest())
        out[key] = stub.register(request, metadata=(("token", domain_admin_token),), timeout=30).plugin_id
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.plugins", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cfg = sub.add_parser("config", help="an emulator configuration whose supervisor runs the plugins of DIR")
    cfg.add_argument("--ready-dir", required=True, help="where the plugins write plugin-<key>.json")
    cfg.add_argument("--out", required=True)
    cfg.add_argument("--repository", default=DEMO_REPOSITORY)
    cfg.add_argument("--version", default=VERSION)
    args = parser.parse_args(argv)
    ready = {key: os.path.join(args.ready_dir, f"plugin-{key}.json") for key in IMAGES}
    with open(args.out, "w", encoding="utf-8") as fh:
        yaml.safe_dump({"plugin_images": plugin_images(ready, args.repository, args.version),
                        "secrets": {METRICS_READER_SECRET: {"purpose": "the monitoring data source's secret"}}},
                       fh, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
