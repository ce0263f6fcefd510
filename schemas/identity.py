"""What ``python -m pipeline setup`` registers in CloudForet's identity service for
provider ``nutanix``: the Provider and the two Schemas (identity.v2 ``Provider.create``,
``Schema.create``). The schema bodies are the JSON files next to this module, the
same files the collector validates secrets with (transforms/common/credentials.py,
with Draft202012Validator). They carry no ``$schema`` key: identity stores a schema in a
mongoengine DictField, which refuses keys that start with ``$`` or contain ``.``.
"""
from __future__ import annotations

from schemas import load_json_schema
from schemas.console import icon_url

PROVIDER = "nutanix"
SECRET_SCHEMA_ID = "nutanix-secret-prism-central"
SERVICE_ACCOUNT_SCHEMA_ID = "nutanix-service-account"
SECRET_SCHEMA_FILE = "nutanix_secret.schema.json"
SERVICE_ACCOUNT_SCHEMA_FILE = "nutanix_service_account.schema.json"
PROVIDER_ICON = "nutanix.svg"  # schemas/console/icons/, inlined as a data URL like the types' icons


def provider_definition() -> dict:
    """identity.v2 CreateProviderRequest's fields (identity ProviderService.create: provider and
    name required; the model caps provider/name/alias at 40 characters and color at 7)."""
    return {"provider": PROVIDER, "name": "Nutanix", "alias": "Nutanix", "color": "#024DA1",
            "icon": icon_url(PROVIDER_ICON), "order": 10}


def schema_definitions() -> list[dict]:
    """identity.v2 CreateSchemaRequest's fields, the SECRET schema first: the
    SERVICE_ACCOUNT schema names it in ``related_schemas`` (as CloudForet's managed
    azure-service-account names azure-secret-client-secret)."""
    return [
        {"schema_id": SECRET_SCHEMA_ID, "name": "Nutanix Prism Central secret", "schema_type": "SECRET",
         "provider": PROVIDER, "schema": load_json_schema(SECRET_SCHEMA_FILE)},
        {"schema_id": SERVICE_ACCOUNT_SCHEMA_ID, "name": "Nutanix Prism Central", "schema_type": "SERVICE_ACCOUNT",
         "provider": PROVIDER, "schema": load_json_schema(SERVICE_ACCOUNT_SCHEMA_FILE),
         "related_schemas": [SECRET_SCHEMA_ID]},
    ]
