"""Schemas a user can read: config, secrets (JSON Schema), snapshots (Avro/Parquet)."""
from __future__ import annotations

import json
from importlib import resources


def load_json_schema(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath(name).read_text())
