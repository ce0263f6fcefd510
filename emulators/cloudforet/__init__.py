"""CloudForet (SpaceONE) API emulator: the subset the Nutanix collector uses.

Serves the real ``spaceone-api`` generated services over gRPC with state in
SQLite. See ``server.CloudForetEmulator`` and ``python -m emulators.cloudforet``.
"""
from .config import EmulatorConfig
from .server import CloudForetEmulator

__all__ = ["CloudForetEmulator", "EmulatorConfig"]
