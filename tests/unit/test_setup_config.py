"""cloudforet.setup and accounts_from in the configuration: validated at start-up, named in errors."""
from __future__ import annotations

import pytest

from pipeline.config import ConfigError, parse_config

BASE = {"endpoint": "127.0.0.1:1", "domain_id": "d", "workspace_id": "w", "auth": {"token_env": "T"}}


def config(**cloudforet):
    return {"cloudforet": {**BASE, **cloudforet}}


def test_setup_credentials_are_each_a_role_with_its_scope():
    c = parse_config(config(setup={"domain_admin": {"user_id": "admin@example.com", "password_env": "P"},
                                   "workspace_owner": {"token_env": "OWNER"}, "project_id": "project-1"}))
    assert (c.setup.domain_admin.user_id, c.setup.domain_admin.scope) == ("admin@example.com", "DOMAIN")
    assert (c.setup.workspace_owner.token_env, c.setup.workspace_owner.scope) == ("OWNER", "WORKSPACE")
    assert c.setup.project_id == "project-1" and c.accounts_from == "config"


def test_setup_is_optional_for_a_run():
    c = parse_config(config())
    assert c.setup.domain_admin is None and c.setup.workspace_owner is None


@pytest.mark.parametrize("setup, named", [
    ({"domain_admin": {"token_env": "A", "user_id": "u"}}, "cloudforet.setup.domain_admin: give either token_env"),
    ({"workspace_owner": {"password": "inline"}}, "cloudforet.setup.workspace_owner"),
    ({"domain_admin": {"token_env": "A"}, "domain_admins": {}}, "domain_admins"),
])
def test_a_bad_setup_credential_names_its_key(setup, named):
    with pytest.raises(ConfigError) as err:
        parse_config(config(setup=setup))
    assert named in str(err.value)
    assert "inline" not in str(err.value)  # a value put where a variable name belongs is never echoed


def test_accounts_from_takes_two_values_and_needs_no_accounts():
    assert parse_config({**config(), "accounts_from": "service_accounts"}).accounts == ()
    with pytest.raises(ConfigError) as err:
        parse_config({**config(), "accounts_from": "cloudforet"})
    assert "accounts_from" in str(err.value)


def test_a_server_answer_quoting_a_secret_is_scrubbed():
    """identity answers a secret_data that fails its schema with jsonschema's message, which may quote
    the value (SchemaManager.validate_secret_data_by_schema_id): setup never prints it."""
    from connectors.errors import CloudForetError
    from pipeline.setup import WORKSPACE_OWNER, SetupRun
    ctx = SetupRun(parse_config(config()))
    ctx.keep_secret({"nutanix_host": "10.0.0.1", "nutanix_username": "admin-user", "nutanix_password": "pw-1234567"})
    err = CloudForetError("ServiceAccount.create(pc): INVALID_ARGUMENT: ERROR_INVALID_PARAMETER: key = secret_data, "
                          "reason = 'pw-1234567' is not valid for 'admin-user' at 10.0.0.1.", code="INVALID_ARGUMENT")
    text = str(ctx._error(WORKSPACE_OWNER, "ServiceAccounts (pc)", err))
    assert "pw-1234567" not in text and "admin-user" not in text
    assert "reason = '***' is not valid for '***' at 10.0.0.1" in text
