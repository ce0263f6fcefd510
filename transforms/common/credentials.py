"""Resolves an account's Prism credentials inside a worker.

Credentials never travel through a PCollection or a pickle: each worker
resolves them from its environment or from CloudForet's secret service when it
first needs them, and keeps one client per account.
"""
from __future__ import annotations

import logging
import os
import threading

import jsonschema

from connectors.cloudforet import CloudForetClient
from connectors.errors import CloudForetError, ConnectorError
from connectors.prism import PrismClient, PrismCredentials
from connectors.prism_v4 import PrismV4Client
from connectors.retry import RetryPolicy
from schemas import load_json_schema
from transforms.settings import AccountConfig, Config

log = logging.getLogger(__name__)


class CredentialError(ConnectorError):
    """An account's credentials are missing or unusable (never retried)."""


def _as_bool(value, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("false", "0", "no", "off")


def credentials_from_env(account: AccountConfig) -> PrismCredentials:
    username = account.username or os.environ.get(account.username_env or "", "")
    password = os.environ.get(account.password_env or "", "")
    api_key = os.environ.get(account.api_key_env or "", "")
    if account.api_key_env and not api_key:
        raise CredentialError(f"account '{account.name}': environment variable {account.api_key_env} "
                              "is empty or unset; export the Prism Central API key in it")
    if api_key and not (account.password_env or account.username or account.username_env):
        # v4 with the key alone (config validation made sure v3 is not asked for)
        return PrismCredentials(host=account.host or "", port=account.port, api_key=api_key,
                                verify_ssl=_as_bool(account.verify_ssl, True), ca_bundle=account.ca_bundle,
                                scheme=account.scheme)
    if not username:
        raise CredentialError(f"account '{account.name}': no username (set 'username' or the variable "
                              f"{account.username_env})")
    if not password:
        raise CredentialError(f"account '{account.name}': environment variable {account.password_env} "
                              "is empty or unset; export the Prism Central password in it")
    return PrismCredentials(host=account.host or "", port=account.port, username=username, password=password,
                            api_key=api_key, verify_ssl=_as_bool(account.verify_ssl, True),
                            ca_bundle=account.ca_bundle, scheme=account.scheme)


def credentials_from_secret(account: AccountConfig, data: dict) -> PrismCredentials:
    schema = load_json_schema("nutanix_secret.schema.json")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: e.path)
    if errors:
        # Name the fields, never their values.
        problems = "; ".join(e.message if e.validator == "required" else
                             f"field {'.'.join(map(str, e.path))} has the wrong type" for e in errors)
        raise CredentialError(f"account '{account.name}': secret {account.secret_id} is not a Nutanix "
                              f"secret: {problems}")
    try:
        port = int(data.get("nutanix_port", account.port))
    except (TypeError, ValueError):
        raise CredentialError(f"account '{account.name}': secret {account.secret_id}: nutanix_port "
                              "is not a number") from None
    return PrismCredentials(
        host=data["nutanix_host"], port=port, username=data["nutanix_username"],
        password=data["nutanix_password"],
        api_key=data["nutanix_api_key"] if isinstance(data.get("nutanix_api_key"), str) else "",
        # The config may only tighten what the secret says, and may add a CA bundle.
        verify_ssl=_as_bool(data.get("verify_ssl"), True) if account.verify_ssl is None else account.verify_ssl,
        ca_bundle=account.ca_bundle, scheme=data.get("scheme", account.scheme))


class PrismClients:
    """Per-worker cache of one PrismClient (and, once asked for, one PrismV4Client) per account."""

    def __init__(self, config: Config):
        self.config = config
        self._clients: dict[str, PrismClient] = {}
        self._v4: dict[str, PrismV4Client] = {}
        self._lock = threading.Lock()
        self._cloudforet: CloudForetClient | None = None

    def get(self, account_name: str) -> PrismClient:
        with self._lock:
            client = self._clients.get(account_name)
            if client is None:
                client = self._open(self.config.account(account_name))
                self._clients[account_name] = client
            return client

    def get_v4(self, account_name: str, version: str | None = None) -> PrismV4Client:
        """The account's v4 client (its own session; the same rate budget as its v3 client)."""
        with self._lock:
            client = self._v4.get(account_name)
            if client is None:
                v3 = self._clients.get(account_name) or self._open(self.config.account(account_name))
                self._clients[account_name] = v3
                client = PrismV4Client(account_name, v3.creds, timeout_s=v3.timeout_s, rate_per_s=v3.limiter.rate,
                                       retry=v3.retry, pool_size=self.config.prism.max_concurrency,
                                       version=version or "v4.0")
                self._v4[account_name] = client
            elif version is not None:
                client.version = version
            return client

    def _open(self, account: AccountConfig) -> PrismClient:
        if account.secret_id:
            if self._cloudforet is None:
                cf = self.config.cloudforet
                self._cloudforet = CloudForetClient(cf.endpoints, cf.auth, cf.timeout_s)
            try:
                data = self._cloudforet.secret_data(account.secret_id)
            except CloudForetError as err:
                raise CredentialError(f"account '{account.name}': {err}") from None
            creds = credentials_from_secret(account, data)
        else:
            creds = credentials_from_env(account)
        if creds.scheme == "https" and not creds.verify_ssl:
            log.warning("account '%s': TLS certificate verification is OFF (verify_ssl: false)", account.name)
        p = self.config.prism
        return PrismClient(account.name, creds, timeout_s=p.timeout_s,
                           rate_per_s=p.max_requests_per_s / max(1, p.rate_limit_shares),
                           retry=RetryPolicy(max_attempts=p.max_attempts), pool_size=p.max_concurrency)

    def close(self) -> None:
        with self._lock:
            for c in [*self._clients.values(), *self._v4.values()]:
                c.close()
            self._clients.clear()
            self._v4.clear()
