"""Bad configuration stops the run at once with a message naming the problem."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from pipeline.config import ConfigError, load_config, parse_config
from pipeline.run import run
from tests.helpers import ROOT

GOOD = {
    "accounts": [{"name": "pc-1", "host": "10.0.0.1", "username": "admin", "password_env": "PC1_PASSWORD"}],
    "cloudforet": {"endpoint": "cloudforet.example.com:443", "domain_id": "domain-1", "workspace_id": "ws-1",
                   "auth": {"token_env": "CF_TOKEN"}},
}


def with_(path: str, value, base=None):
    raw = yaml.safe_load(yaml.safe_dump(base or GOOD))
    *parents, leaf = path.split(".")
    node = raw
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is KeyError:
        del node[int(leaf) if leaf.isdigit() else leaf]
    else:
        node[int(leaf) if leaf.isdigit() else leaf] = value
    return raw


def test_good_config_gets_defaults():
    cfg = parse_config(GOOD)
    assert cfg.prism.page_size == 500 and cfg.accounts[0].port == 9440
    assert cfg.cloudforet.endpoints["inventory"].use_tls  # not loopback: TLS by default
    assert cfg.rate_card.default.currency == "USD"
    assert cfg.cloudforet.notification_resource_id == "domain-1"


@pytest.mark.parametrize("path, value, message", [
    ("cloudforet", KeyError, "'cloudforet' is a required property"),
    ("cloudforet.endpoint", KeyError, "cloudforet: give endpoints (each service's address"),
    ("cloudforet.endpoint", 443, "cloudforet.endpoint: 443 is not of type 'string'"),
    ("accounts", [], "accounts: [] should be non-empty"),
    ("accounts.0.port", "9440", "accounts.0.port: '9440' is not of type 'integer'"),
    ("accounts.0.verify_ssl", "yes", "accounts.0.verify_ssl: 'yes' is not of type 'boolean'"),
    ("accounts.0.pasword_env", "X", "unknown key"),
    ("accounts.0.password_env", KeyError, "missing: password_env"),
    ("prism", {"page_size": 0}, "prism.page_size: 0 is less than the minimum of 1"),
    ("cloudforet.auth", {"token_env": "T", "user_id": "u", "password_env": "P"}, "either token_env"),
    ("cloudforet.endpoints", {"inventroy": "grpc://h:1"}, "unknown key"),
    ("cloudforet.endpoints", {"inventory": "http://h:1"}, "must be grpc://host:port, grpc+ssl://host:port"),
    ("rate_card", {"default": {"vcpu_hour": 1}}, "'gib_ram_hour' is a required property"),
])
def test_bad_config_names_the_problem(path, value, message):
    with pytest.raises(ConfigError) as err:
        parse_config(with_(path, value))
    assert message in str(err.value)


def test_live_run_without_accounts_exits_2(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(with_("accounts", KeyError)))
    assert run(["--config", str(path)]) == 2
    assert "'accounts' is required for a live collection" in capsys.readouterr().err


def test_duplicate_account_names():
    raw = with_("accounts", [GOOD["accounts"][0], GOOD["accounts"][0]])
    with pytest.raises(ConfigError, match="duplicate account name"):
        parse_config(raw)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


def test_cli_exits_2_with_the_message(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(with_("cloudforet.domain_id", KeyError)))
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--config", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "'domain_id' is a required property" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_cloudforet_exits_3(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CF_TOKEN", "some-token")
    raw = with_("cloudforet.endpoint", "127.0.0.1:9")
    raw["cloudforet"]["timeout_s"] = 2
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert run(["--config", str(path)]) == 3
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_unset_cloudforet_token_exits_3_naming_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CF_TOKEN", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(with_("cloudforet.endpoint", "127.0.0.1:9")))
    assert run(["--config", str(path)]) == 3
    assert "CF_TOKEN is empty or unset" in capsys.readouterr().err


def test_per_service_endpoints_with_schemes_and_ca_bundles():
    """Each service on its own address (a real deployment: one host per service, no gateway);
    grpc:// is plaintext, grpc+ssl:// TLS, a CA bundle per endpoint or shared."""
    raw = with_("cloudforet.endpoint", KeyError)
    raw["cloudforet"]["ca_bundle"] = "/etc/cf-ca.pem"
    raw["cloudforet"]["endpoints"] = {
        "identity": "grpc+ssl://identity.example.com:443",
        "inventory": {"url": "grpc+ssl://inventory.example.com:443", "ca_bundle": "/etc/inv-ca.pem"},
        "notification": "grpc://10.1.2.3:50051",
    }
    eps = parse_config(raw).cloudforet.endpoints
    assert (eps["identity"].address, eps["identity"].use_tls, eps["identity"].ca_bundle) == \
        ("identity.example.com:443", True, "/etc/cf-ca.pem")
    assert (eps["inventory"].use_tls, eps["inventory"].ca_bundle) == (True, "/etc/inv-ca.pem")
    assert (eps["notification"].address, eps["notification"].use_tls) == ("10.1.2.3:50051", False)
    assert eps.get("cost_analysis") is None and eps.missing(["inventory", "secret"]) == ["secret"]


def test_one_endpoint_means_every_service_there():
    eps = parse_config(GOOD).cloudforet.endpoints
    assert {eps[s].address for s in ("identity", "inventory", "cost_analysis", "notification", "secret")} == \
        {"cloudforet.example.com:443"}


# -- cost_mode api (cost-analysis 2.0.108 Cost.create) ----------------------------------------

USER_AUTH = {"user_id": "collector@example.com", "password_env": "CF_PASSWORD"}


def test_cost_mode_defaults_to_datasource_which_takes_an_app_token():
    cfg = parse_config(GOOD)
    assert cfg.cloudforet.cost_mode == "datasource" and cfg.cloudforet.auth.token_env == "CF_TOKEN"


@pytest.mark.parametrize("mode", ["api", "both"])
def test_api_mode_refuses_an_app_token_naming_what_works(mode):
    raw = with_("cloudforet.cost_mode", mode, with_("cloudforet.cost_project_id", "project-1"))
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    msg = str(err.value)
    assert "cloudforet.auth.token_env" in msg and "DOMAIN_ADMIN user" in msg and "cost_mode: datasource" in msg


def test_api_mode_needs_a_project_for_every_account():
    raw = with_("cloudforet.auth", USER_AUTH, with_("cloudforet.cost_mode", "api"))
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert "cloudforet.cost_project_id is missing" in str(err.value) and "pc-1" in str(err.value)
    per_account = parse_config(with_("accounts.0.cost_project_id", "project-east", raw))
    assert per_account.accounts[0].cost_project_id == "project-east"
    default = parse_config(with_("cloudforet.cost_project_id", "project-1", raw))
    assert default.cloudforet.cost_project_id == "project-1" and default.cloudforet.auth.scope == "WORKSPACE"


def test_api_mode_unknown_or_missing_project_and_wrong_role_exit_codes_on_the_emulator(tmp_path, monkeypatch,
                                                                                      capsys):
    """The same refusals tests/conformance gets from the real identity and cost-analysis."""
    from emulators.cloudforet.config import EmulatorConfig
    from emulators.cloudforet.server import CloudForetEmulator
    users = [{"user_id": "admin@example.com", "password": "pw-admin", "role_type": "DOMAIN_ADMIN"},
             {"user_id": "owner@example.com", "password": "pw-owner", "role_type": "WORKSPACE_OWNER"}]
    with CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig(users=users)) as emu:
        def run_as(user: str, project: str) -> tuple[int, str]:
            monkeypatch.setenv("CF_PASSWORD", "pw-" + user.split("@")[0])
            raw = {**GOOD, "cloudforet": {"endpoint": emu.endpoint, "domain_id": emu.config.domain_id,
                                          "workspace_id": emu.config.workspace_id, "cost_mode": "api",
                                          "cost_project_id": project,
                                          "auth": {"user_id": user, "password_env": "CF_PASSWORD"}},
                   "report": {"path": str(tmp_path / "report.json")}}
            path = tmp_path / "c.yaml"
            path.write_text(yaml.safe_dump(raw))
            code = run(["--config", str(path)])
            return code, capsys.readouterr().err
        code, err = run_as("admin@example.com", "project-nope")
        assert code == 2 and "cloudforet.cost_project_id = project-nope: no such project" in err
        code, err = run_as("owner@example.com", "project-nutanix")
        assert code == 3 and "Token.grant in DOMAIN scope was refused" in err and "DOMAIN_ADMIN role binding" in err


def test_region_map_tags_per_cluster_name_or_uuid():
    regions = {"cluster-a": {"continent": "europe", "latitude": 52.37, "longitude": 4.9},
               "00061f7f-44f7-19dc-3be1-7cc25586ee44": {"continent": "north_america"}}
    account = parse_config(with_("accounts.0.regions", regions)).accounts[0]
    assert account.region_tags() == {
        "cluster-a": {"continent": "europe", "latitude": "52.37", "longitude": "4.9"},
        "00061f7f-44f7-19dc-3be1-7cc25586ee44": {"continent": "north_america"}}
    assert parse_config(GOOD).accounts[0].region_tags() == {}


@pytest.mark.parametrize("tags, message", [
    ({"latitude": 91, "longitude": 0}, "accounts.0.regions.cluster-a.latitude: 91 is greater than the maximum of 90"),
    ({"latitude": 10}, "accounts.0.regions.cluster-a: 'longitude' is a dependency of 'latitude'"),
    ({"continent": "North America"}, "accounts.0.regions.cluster-a.continent: 'North America' does not match"),
    ({"contient": "europe"}, "unknown key"),
    ({}, "accounts.0.regions.cluster-a: {} should be non-empty"),
])
def test_bad_region_map_tags_name_the_cluster_and_the_problem(tags, message):
    with pytest.raises(ConfigError) as err:
        parse_config(with_("accounts.0.regions", {"cluster-a": tags}))
    assert message in str(err.value)
