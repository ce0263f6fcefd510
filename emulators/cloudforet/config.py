"""Configuration of the CloudForet emulator.

Identity data (users, apps, secrets, service accounts) is configuration, not
state: the collector only reads it, so it lives here instead of in SQLite.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROLE_TYPES = ("DOMAIN_ADMIN", "WORKSPACE_OWNER", "WORKSPACE_MEMBER", "USER")


def _default_users() -> list[dict]:
    return [{"user_id": "collector@example.com", "password": "collector-pass", "role_type": "DOMAIN_ADMIN"}]


def _default_projects() -> list[dict]:
    return [{"project_id": "project-nutanix", "name": "Nutanix costs"}]


def _default_apps() -> list[dict]:
    """The collector's workspace app, and a domain app for ``python -m pipeline setup``'s
    Provider and Schema (DOMAIN_ADMIN only): an App cannot change scope."""
    return [{"app_id": "app-nutanix-collector", "role_type": "WORKSPACE_OWNER"},
            {"app_id": "app-nutanix-setup", "role_type": "DOMAIN_ADMIN"}]


@dataclass
class EmulatorConfig:
    """Everything the emulator needs besides its database file."""

    domain_id: str = "domain-nutanix"
    workspace_id: str = "workspace-default"
    users: list[dict] = field(default_factory=_default_users)
    apps: list[dict] = field(default_factory=_default_apps)
    secrets: dict[str, dict] = field(default_factory=dict)
    encrypted_secrets: list[str] = field(default_factory=list)  # answered encrypted, as with an encryptor on
    # identity's ENDPOINTS global: empty on a stock install; ``"self"`` lists the
    # emulator's own per-service addresses (a deployment that configured it)
    published_endpoints: list[dict] | str = field(default_factory=list)
    service_accounts: list[dict] = field(default_factory=list)
    cost_data_sources: list[str] = field(default_factory=lambda: ["ds-nutanix"])
    projects: list[dict] = field(default_factory=_default_projects)  # {project_id, name, workspace_id?}
    access_token_ttl: int = 1800
    refresh_token_ttl: int = 10800
    latency_ms: float = 0.0
    cost_create_unsupported: bool = False

    def __post_init__(self) -> None:
        for entry in [*self.users, *self.apps]:
            role = entry.get("role_type")
            if role not in ROLE_TYPES:
                raise ValueError(f"invalid role_type {role!r}; expected one of {list(ROLE_TYPES)}")
        for user in self.users:
            if not user.get("user_id") or "password" not in user:
                raise ValueError("every user needs user_id and password")
        for app in self.apps:
            if not app.get("app_id"):
                raise ValueError("every app needs app_id")

    def user(self, user_id: str) -> dict | None:
        """The configured user with this id, if any."""
        return next((u for u in self.users if u.get("user_id") == user_id), None)

    def project(self, project_id: str, workspace_id: str | None) -> dict | None:
        """The configured project, if it is in ``workspace_id`` (a workspace defaults to the emulator's)."""
        for p in self.projects:
            if p.get("project_id") == project_id and workspace_id in (None, p.get("workspace_id", self.workspace_id)):
                return {"workspace_id": self.workspace_id, "domain_id": self.domain_id, **p}
        return None

    def app(self, app_id: str) -> dict | None:
        """The configured app with this id, if any."""
        return next((a for a in self.apps if a.get("app_id") == app_id), None)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "EmulatorConfig":
        """Build from a plain mapping; unknown keys are an error so typos surface."""
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown EmulatorConfig keys: {unknown}")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> "EmulatorConfig":
        """Load a YAML or JSON file (JSON is valid YAML)."""
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at top level")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
