"""Each plugin image's build file starts exactly the command plugin/images.py names (the one the
tests start), on the port CloudForet's supervisor maps, built like the SDK image. No Docker engine
runs here, so the build files are parsed."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from plugin import __main__ as plugin_main
from plugin.images import IMAGES, SUPERVISOR_PLUGIN_PORT, check_image_name

REPO = Path(__file__).resolve().parents[2]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def exec_form(args: str) -> list[str]:
    value = json.loads(args)  # the exec form is a JSON array; the shell form would wrap it in /bin/sh -c
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def last(steps: list[tuple[str, str]], keyword: str) -> str:
    found = [args for k, args in steps if k == keyword]
    assert found, f"no {keyword} in the build file"
    return found[-1]


@pytest.mark.parametrize("key", sorted(IMAGES))
def test_the_build_file_runs_the_images_command_on_the_supervisors_port(key):
    image = IMAGES[key]
    steps = instructions(REPO / image.dockerfile)
    command = exec_form(last(steps, "ENTRYPOINT")) + exec_form(last(steps, "CMD"))
    assert command == image.command()
    assert command[:3] == ["python", "-m", "plugin"] and command[3] == image.protocol
    assert command[command.index("--port") + 1] == str(SUPERVISOR_PLUGIN_PORT) == "50051"
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert last(steps, "EXPOSE") == str(SUPERVISOR_PLUGIN_PORT)
    assert not any("--store" in part or "/" in part for part in command), "paths come from the options"


@pytest.mark.parametrize("key", sorted(IMAGES))
def test_the_build_file_is_pinned_like_the_sdk_image(key):
    sdk = instructions(REPO / "Dockerfile")
    steps = instructions(REPO / IMAGES[key].dockerfile)
    assert last(steps, "FROM") == last(sdk, "FROM")
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", last(steps, "FROM")), "an exact base tag"
    install = next(args for k, args in steps if k == "RUN" and "pip install" in args)
    assert "-c /tmp/collector/constraints.txt" in install


@pytest.mark.parametrize("key", sorted(IMAGES))
def test_the_images_command_is_one_the_plugin_parses_with_no_store(key):
    args = plugin_main.build_parser().parse_args(IMAGES[key].cmd())
    assert (args.protocol, args.host, args.port, getattr(args, "store", None)) == (key, "0.0.0.0", 50051, None)
    server = plugin_main.make_server(args)  # builds (does not bind): no store is needed to start
    assert server.port == 50051


def test_image_names_fit_the_repository_and_the_data_sources():
    for image in IMAGES.values():
        assert check_image_name(f"registry.example.com/nutanix/{image.name}") == image.name
    with pytest.raises(ValueError, match="at most 48"):
        check_image_name("cloudforet/" + "p" * 49)
    with pytest.raises(ValueError, match="letters, digits and '-'"):
        check_image_name("cloudforet/plugin_nutanix")
    with pytest.raises(ValueError, match="without a tag"):
        check_image_name("cloudforet/plugin-nutanix:1.0")
    with pytest.raises(ValueError, match="at most 40"):
        check_image_name("cloudforet/" + "p" * 41)
