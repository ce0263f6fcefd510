"""The collector plugin's and the emulated collect's small parts: account naming, options, secret filters."""
from __future__ import annotations

import pytest

from emulators.cloudforet.collecting import selected
from emulators.cloudforet.errors import ApiError
from plugin.collector.reading import account_of, address_of, prism_options
from plugin.collector.tasks import vms_per_task

SECRET = {"nutanix_host": "pc1.example.com", "nutanix_username": "u", "nutanix_password": "p-Secret1"}


def test_records_are_named_after_the_prism_centrals_address_unless_account_names_maps_it():
    assert address_of(SECRET) == "pc1.example.com"  # the default port is left out
    assert address_of({**SECRET, "nutanix_port": 9441.0}) == "pc1.example.com:9441"  # a Struct's double
    assert account_of(SECRET, {}).name == "pc1.example.com"
    assert account_of(SECRET, {"account_names": {"pc1.example.com": "pc-east"}}).name == "pc-east"
    assert "p-Secret1" not in repr(account_of(SECRET, {}))
    with pytest.raises(ValueError, match="account_names must map"):
        account_of(SECRET, {"account_names": ["pc-east"]})


def test_options_are_checked_with_the_option_named():
    assert prism_options({"page_size": 50.0}).page_size == 50
    with pytest.raises(ValueError, match="option page_size must be > 0"):
        prism_options({"page_size": 0})
    with pytest.raises(ValueError, match="option max_requests_per_s must be a number"):
        prism_options({"max_requests_per_s": "fast"})
    assert vms_per_task({}) == 2000
    with pytest.raises(ValueError, match="vms_per_task must be a whole number > 0"):
        vms_per_task({"vms_per_task": "many"})


def test_an_enabled_secret_filter_keeps_and_excludes_as_inventory_does():
    secrets = [{"secret_id": f"s{i}", "service_account_id": f"sa{i}"} for i in range(4)]
    assert selected(secrets, {"state": "DISABLED", "secrets": ["s0"]}) == secrets
    assert [s["secret_id"] for s in selected(secrets, {"state": "ENABLED", "service_accounts": ["sa1", "sa2"],
                                                       "exclude_secrets": ["s2"]})] == ["s1"]
    assert [s["secret_id"] for s in selected(secrets, {"state": "ENABLED",
                                                       "exclude_service_accounts": ["sa0"]})] == ["s1", "s2", "s3"]


def test_the_secrets_are_those_of_a_workspace_collectors_workspace_and_a_schema_filter_is_refused():
    secrets = [{"secret_id": f"s{i}", "service_account_id": f"sa{i}", "workspace_id": f"ws{i % 2}"} for i in range(4)]
    assert [s["secret_id"] for s in selected(secrets, {}, "ws1")] == ["s1", "s3"]
    assert selected(secrets, {"state": "DISABLED", "schemas": ["x"]}) == secrets  # a disabled filter is not sent
    for key in ("schemas", "exclude_schemas"):
        with pytest.raises(ApiError, match='ERROR_DB_QUERY.*Cannot resolve field "schema"'):
            selected(secrets, {"state": "ENABLED", key: ["nutanix-secret-prism-central"]})
