"""CloudForet (SpaceONE) API emulator: the subset the Nutanix collector uses.

Serves the real ``spaceone-api`` generated services over gRPC with state in
SQLite. See ``server.CloudForetEmulator`` and ``python -m emulators.cloudforet``.

It behaves as the real services do, not as the collector would wish; each
module names the code it follows:
- inventory at 65d4f208 (``inventory_service``: per-provider tag buckets,
  DELETED records, one-level ``data`` merge);
- notification at cb8ef5a (``notification_service``: apps create, only a user
  lists, and only their own inbox);
- spaceone-identity 2.0.227 (``identity_service``: tokens, grants, Endpoint.list,
  Project.get, Provider, Schema, ServiceAccount with its secret) and python-core
  2.0.144's authorization handler (``auth``);
- spaceone-cost-analysis 2.0.108 (``cost_service``: project_id, top-level
  data_source_id, the workspace rewrite of Cost.list);
- python-core's SpaceConnector for calling plugins (``plugin_client``:
  reflection, short names);
- the secret service's internal ``get_data`` (``secret_service``).
With ``per_service`` every service also has its own port, as a real deployment
serves them.
"""
from .config import EmulatorConfig
from .server import CloudForetEmulator

__all__ = ["CloudForetEmulator", "EmulatorConfig"]
