"""Start-up checks of cost_mode api against the servers: the user's two grants and the projects.

cost-analysis 2.0.108 ``CostService.create`` allows only WORKSPACE_OWNER and
checks ``project_id`` with identity ``Project.get``; reading back what it
wrote needs a DOMAIN grant (see transforms/sinks/cost_analysis.py). A run that could not
write each cost exactly once stops here, before anything is written.
"""
from __future__ import annotations

from connectors.cloudforet import CloudForetClient
from connectors.errors import CloudForetError
from connectors.retry import RetryPolicy
from pipeline.config import ConfigError
from transforms.settings import Config
from transforms.sinks.cost_analysis import reader_auth

NEEDS_DOMAIN_ADMIN = ("cost_mode {mode} needs a DOMAIN_ADMIN user: its DOMAIN grant reads back the costs "
                      "(a workspace-scoped Cost.list does not see what Cost.create stored) and its WORKSPACE grant "
                      "(a WORKSPACE_OWNER) creates them. Give {user} a DOMAIN_ADMIN role binding, or use "
                      "cost_mode: datasource")


def cost_projects(config: Config) -> dict[str, str]:
    """project_id -> the config key that names it."""
    out = {}
    if config.cloudforet.cost_project_id:
        out[config.cloudforet.cost_project_id] = "cloudforet.cost_project_id"
    for a in config.accounts:
        if a.cost_project_id:
            out.setdefault(a.cost_project_id, f"accounts[{a.name}].cost_project_id")
    return out


def check_cost_api(config: Config) -> None:
    cf = config.cloudforet
    hint = NEEDS_DOMAIN_ADMIN.format(mode=cf.cost_mode, user=cf.auth.user_id)
    retry = RetryPolicy(max_attempts=3, max_total_s=20)
    timeout = min(cf.timeout_s, 15.0)
    writer = CloudForetClient(cf.endpoints, cf.auth, timeout_s=timeout, retry=retry)
    role = writer.token_claims().get("rol")
    if role != "WORKSPACE_OWNER":
        raise CloudForetError(f"{cf.auth.user_id} is {role} in workspace {cf.auth.workspace_id}, and Cost.create "
                              f"allows only WORKSPACE_OWNER. {hint}.", code="PERMISSION_DENIED")
    reader = CloudForetClient(cf.endpoints, reader_auth(cf.auth), timeout_s=timeout, retry=retry)
    try:
        role = reader.token_claims().get("rol")
    except CloudForetError as err:
        if err.code != "PERMISSION_DENIED":
            raise
        raise CloudForetError(f"Token.grant in DOMAIN scope was refused for {cf.auth.user_id} ({err}). {hint}.",
                              code=err.code) from None
    if role != "DOMAIN_ADMIN":
        raise CloudForetError(f"{cf.auth.user_id} is {role} in DOMAIN scope. {hint}.", code="PERMISSION_DENIED")
    for project_id, key in sorted(cost_projects(config).items()):
        try:
            writer.get_project(project_id)
        except CloudForetError as err:
            if err.code not in ("NOT_FOUND", "INVALID_ARGUMENT", "PERMISSION_DENIED"):
                raise
            raise ConfigError(f"{key} = {project_id}: no such project in workspace {cf.auth.workspace_id} "
                              f"({err.code}: identity Project.get, which Cost.create checks it with). Name a "
                              "project of that workspace (identity Project.list).") from None
