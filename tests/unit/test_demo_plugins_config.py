"""The demo's plugin wiring: the emulator configuration ``python -m emulators.plugins config`` writes
(the registry holds the three images, the supervisor runs each where its ready file says) and the
collector configuration ``python -m emulators.demo`` writes (``cloudforet.setup.plugins``), both
accepted by the code that reads them."""
from __future__ import annotations

import json

import yaml

from emulators.cloudforet import plugin_registry
from emulators.cloudforet.config import EmulatorConfig
from emulators.demo import demo_config
from emulators.plugins import METRICS_READER_SECRET, main
from pipeline.config import load_config
from plugin.images import IMAGES


def test_the_emulator_config_maps_each_image_to_its_plugins_ready_file(tmp_path):
    out = tmp_path / "cloudforet-config.yaml"
    assert main(["config", "--ready-dir", str(tmp_path), "--out", str(out)]) == 0
    config = EmulatorConfig.from_file(out)
    images = {e["image"] for e in config.plugin_images}
    assert images == {f"nutanix/{i.name}" for i in IMAGES.values()}
    cost = "nutanix/" + IMAGES["cost"].name
    assert plugin_registry.tags(config, cost) == ["0.1.0"]
    assert plugin_registry.running_endpoint(config, cost) is None  # not started yet: no supervisor can run it
    (tmp_path / "plugin-cost.json").write_text(json.dumps({"endpoint": "127.0.0.1:4242"}))
    assert plugin_registry.running_endpoint(config, cost) == "grpc://127.0.0.1:4242"
    assert METRICS_READER_SECRET in config.secrets


def test_the_demo_config_names_the_plugins_setup_registers(tmp_path):
    prism = {"prism_centrals": [{"name": "pc-0", "host": "127.0.0.1", "port": 9441}]}
    cloudforet = {"endpoint": "127.0.0.1:1", "domain_id": "d", "workspace_id": "w",
                  "endpoints": {"identity": "127.0.0.1:2", "plugin": "127.0.0.1:3", "repository": "127.0.0.1:4"}}
    raw = demo_config(prism, cloudforet, str(tmp_path))
    assert set(raw["cloudforet"]["endpoints"]) == {"identity", "repository"}  # the plugin service is internal
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in raw.items() if v is not None}))
    plugins = load_config(str(path)).setup.plugins
    assert plugins is not None and plugins.image_repository == "nutanix" and plugins.collector_hours == (2, 14)
    assert plugins.monitoring_secret_id == ""  # the demo's service accounts lend theirs
    replay = demo_config({"prism_centrals": []}, cloudforet, str(tmp_path))
    assert replay["cloudforet"]["setup"]["plugins"]["monitoring_secret_id"] == METRICS_READER_SECRET
