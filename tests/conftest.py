"""Shared fixtures: real emulators on loopback ports, real configs."""
from __future__ import annotations

import pytest

from emulators.prism.fleet import FleetSpec, generate_fleet
from emulators.prism.server import PrismServer
from tests.helpers import CLOUDFORET_USER_PASSWORD, PRISM_PASSWORD


@pytest.fixture
def prism_servers():
    """Starts one PrismServer per Prism Central of a spec; stops them all after the test."""
    started: list[PrismServer] = []

    def start(spec: FleetSpec, **kwargs) -> list[PrismServer]:
        servers = [PrismServer(pc, username="admin", password=PRISM_PASSWORD, **kwargs).start()
                   for pc in generate_fleet(spec)]
        started.extend(servers)
        return servers

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def cloudforets(tmp_path):
    """Starts CloudForet emulators by name (fresh SQLite files); stops them after the test."""
    from emulators.cloudforet.config import EmulatorConfig
    from emulators.cloudforet.server import CloudForetEmulator
    started = []

    def start(name: str) -> CloudForetEmulator:
        emu = CloudForetEmulator(str(tmp_path / f"{name}.sqlite"), EmulatorConfig()).start()
        started.append(emu)
        return emu

    yield start
    for e in started:
        e.stop()


@pytest.fixture
def cloudforet(tmp_path):
    """One CloudForet emulator whose user is a DOMAIN_ADMIN (what whole runs in api cost mode need)."""
    from emulators.cloudforet.config import EmulatorConfig
    from emulators.cloudforet.server import CloudForetEmulator
    cfg = EmulatorConfig(users=[
        {"user_id": "collector@example.com", "password": CLOUDFORET_USER_PASSWORD, "role_type": "DOMAIN_ADMIN"},
    ])
    emu = CloudForetEmulator(str(tmp_path / "cloudforet.sqlite"), cfg).start()
    yield emu
    emu.stop()
