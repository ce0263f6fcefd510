"""Prism credentials from a CloudForet secret, and CloudForet token handling."""
from __future__ import annotations

import json
import time

import pytest

from connectors.cloudforet import CloudForetAuth, CloudForetClient, CloudForetEndpoint, TokenProvider, shared_channel
from connectors.errors import CloudForetError
from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import CLOUDFORET_USER_PASSWORD, PRISM_PASSWORD, FakeClock, write_config
from transforms.common.credentials import CredentialError, credentials_from_secret
from transforms.settings import AccountConfig

USER = {"user_id": "collector@example.com", "password": CLOUDFORET_USER_PASSWORD, "role_type": "DOMAIN_ADMIN"}


def test_collection_with_prism_credentials_from_a_cloudforet_secret(tmp_path, prism_servers, monkeypatch):
    server, = prism_servers(FleetSpec(vms=12, clusters=1, hosts_per_cluster=1))
    secret = {"nutanix_host": server.host, "nutanix_port": server.port, "nutanix_username": "admin",
              "nutanix_password": PRISM_PASSWORD, "verify_ssl": False, "scheme": "http"}
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig(
        users=[USER], secrets={"secret-pc": secret})).start()
    try:
        monkeypatch.setenv("TEST_CF_TOKEN", emu.app_token())
        monkeypatch.setenv("TEST_CF_PASSWORD", CLOUDFORET_USER_PASSWORD)
        config = write_config(tmp_path, [], emu, accounts=[{"name": "from-secret", "secret_id": "secret-pc"}])
        assert run(["--config", config, "--collected-at", "2026-11-28T06:00:00Z"]) == 0
        report = (tmp_path / "report.json").read_text()
        assert json.loads(report)["accounts"]["from-secret"]["inventory"]["created"] == 12 + 24 + 1 + 1
        assert PRISM_PASSWORD not in report
    finally:
        emu.stop()


def test_a_secret_that_is_not_a_nutanix_secret_names_fields_not_values():
    account = AccountConfig(name="pc", secret_id="secret-x")
    with pytest.raises(CredentialError) as err:
        credentials_from_secret(account, {"nutanix_host": "h", "nutanix_password": "hunter2-value"})
    assert "'nutanix_username' is a required property" in str(err.value)
    assert "hunter2-value" not in str(err.value)
    creds = credentials_from_secret(account, {"nutanix_host": "h", "nutanix_username": "u",
                                              "nutanix_password": "hunter2-value"})
    assert creds.port == 9440 and creds.verify_ssl is True and creds.scheme == "https"
    assert "hunter2-value" not in repr(creds)


def test_user_token_is_refreshed_five_minutes_before_expiry(tmp_path, monkeypatch):
    # an access token living 302 s is inside the 5-minute margin 2.5 s later
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig(users=[USER],
                                                                        access_token_ttl=302)).start()
    try:
        monkeypatch.setenv("CF_PW", CLOUDFORET_USER_PASSWORD)
        auth = CloudForetAuth(domain_id=emu.config.domain_id, workspace_id=emu.config.workspace_id,
                              user_id=USER["user_id"], password_env="CF_PW")
        clock = FakeClock(time.time())  # the client's clock; the emulator keeps the real one
        client = CloudForetClient(CloudForetEndpoint(emu.endpoint), auth)
        client.tokens = TokenProvider(CloudForetEndpoint(emu.endpoint), auth, clock=clock)
        first = client.tokens.token()
        assert client.tokens.token() == first  # still fresh: reused
        clock.advance(2.5)
        second = client.tokens.token()
        assert second != first  # within 5 minutes of expiry: re-granted
        client.count_cloud_services_of("nutanix")  # and it works
    finally:
        emu.stop()


def test_wrong_password_and_one_channel_per_endpoint(tmp_path, monkeypatch):
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig(users=[USER])).start()
    try:
        monkeypatch.setenv("CF_PW", "wrong-password-value")
        auth = CloudForetAuth(domain_id=emu.config.domain_id, workspace_id=emu.config.workspace_id,
                              user_id=USER["user_id"], password_env="CF_PW")
        endpoint = CloudForetEndpoint(emu.endpoint)
        client = CloudForetClient(endpoint, auth)
        with pytest.raises(CloudForetError) as err:
            client.tokens.token()
        assert err.value.code == "UNAUTHENTICATED" and "wrong-password-value" not in str(err.value)
        assert shared_channel(endpoint) is shared_channel(CloudForetEndpoint(emu.endpoint))
        assert not endpoint.use_tls and CloudForetEndpoint("cf.example.com:443").use_tls
    finally:
        emu.stop()
