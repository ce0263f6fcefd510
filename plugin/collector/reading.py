"""Reading one Prism Central for a collector task, with the pipeline's own steps.

No second reader: the pages are fetched by the pipeline's ``FetchPages`` DoFn
(``transforms/sources/prism.py``: its range fetch with the VM stats of each
page, follow-ups when Prism answers fewer, ``split_page`` into keyed VMs,
clusters and hosts, dead letters for entities without a uuid), driven here by
hand the way a Beam worker drives it (``start_bundle``, ``process`` for each
page request, ``finish_bundle``), and every entity is normalized by the
pipeline's ``NormalizeVm`` / ``NormalizeInfra``. Running the DoFns in the
plugin's own threads instead of through a Beam runner keeps a task a plain
stream: the first ResourceInfo leaves as soon as the first page is in.

Credentials come from the secret data Inventory passes, checked against
``schemas/nutanix_secret.schema.json`` by the pipeline's
``credentials_from_secret``. Every client of one Prism Central in this process
shares one rate limiter (``connectors/ratelimit.py`` ``shared_limiter``, keyed
by the Prism Central's address): the tasks CloudForet runs at once for one
account share its request budget.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, cast

from apache_beam import pvalue
from apache_beam.utils.windowed_value import WindowedValue

from connectors.clock import SYSTEM_CLOCK, Clock
from connectors.prism import PrismClient, PrismCredentials
from connectors.retry import RetryPolicy
from transforms.common.credentials import credentials_from_secret
from transforms.elements import PageRequest
from transforms.settings import AccountConfig, Config, PrismOptions, RunContext
from transforms.sources.prism import FetchPages

log = logging.getLogger(__name__)

DEFAULT_PORT = 9440
SECRET_ID = "(the secret Inventory passed)"  # how errors name the secret: the plugin never sees its id


@dataclass(frozen=True)
class Account:
    """One Prism Central as a task reads it: its name in the records, its credentials."""

    name: str
    creds: PrismCredentials = field(repr=False)


def address_of(secret_data: dict) -> str:
    """A Prism Central's address as its secret gives it: the host, and ``:port`` when not 9440."""
    host = str((secret_data or {}).get("nutanix_host") or "")
    port: object = (secret_data or {}).get("nutanix_port") or DEFAULT_PORT
    if isinstance(port, float) and port.is_integer():  # a Struct holds every number as a double
        port = int(port)
    return host if str(port) == str(DEFAULT_PORT) else f"{host}:{port}"


def account_of(secret_data: dict, options: dict) -> Account:
    """The account a secret stands for.

    Its name is the Prism Central's address (``address_of``; as the Azure
    collector names records by the secret's subscription_id), unless the
    plugin option ``account_names`` ({address: name}) maps it to the name a
    pipeline run wrote the records with, so both paths match the same records.
    """
    address = address_of(secret_data)
    names = options.get("account_names") or {}
    if not isinstance(names, dict):
        raise ValueError("option account_names must map a Prism Central address (host or host:port) to a name")
    name = str(names.get(address) or address or "nutanix")
    ca_bundle = options.get("ca_bundle") or None  # a CA file in the plugin's container, for a private CA
    if ca_bundle is not None and not isinstance(ca_bundle, str):
        raise ValueError("option ca_bundle must be the path of a PEM file of the Prism Central's CA")
    # a CredentialError names the fields that are wrong, never their values
    return Account(name, credentials_from_secret(AccountConfig(name=name, secret_id=SECRET_ID, ca_bundle=ca_bundle),
                                                 dict(secret_data or {})))


def prism_options(options: dict) -> PrismOptions:
    """The plugin options that tune reading (the pipeline's ``prism:`` keys); the rest default."""
    known = {"page_size": int, "timeout_s": float, "max_requests_per_s": float, "max_concurrency": int,
             "max_attempts": int, "stats_window_s": int, "stats_interval_s": int}
    given: dict[str, Any] = {}
    for key, kind in known.items():
        if key in options and options[key] is not None:
            try:
                given[key] = kind(options[key])
            except (TypeError, ValueError):
                raise ValueError(f"option {key} must be a number, got {options[key]!r}") from None
            if given[key] <= 0:
                raise ValueError(f"option {key} must be > 0, got {options[key]!r}")
    return PrismOptions(**given)


def open_client(account: Account, prism: PrismOptions) -> PrismClient:
    """A Prism client whose limiter is the one every task of this Prism Central shares."""
    return PrismClient(account.name, account.creds, timeout_s=prism.timeout_s, rate_per_s=prism.max_requests_per_s,
                       retry=RetryPolicy(max_attempts=prism.max_attempts), pool_size=prism.max_concurrency)


class _OneClient:
    """``PrismClients`` for one account: the client the task opened."""

    def __init__(self, client: PrismClient) -> None:
        self.client = client

    def get(self, account: str) -> PrismClient:
        return self.client

    def close(self) -> None:
        """The task closes its client itself."""


class TaskFetch(FetchPages):
    """The pipeline's FetchPages with the task's client instead of the config's accounts."""

    POOL_NAME = "collector-fetch"

    def __init__(self, prism: PrismOptions, ctx: RunContext, client: PrismClient) -> None:
        # FetchPages reads only config.prism; the plugin has no accounts or CloudForet settings.
        config = Config(accounts=(), prism=prism, cloudforet=cast(Any, None), rate_card=cast(Any, None))
        super().__init__(config, ctx)
        self._client = client

    def setup(self) -> None:  # the DoFn's own setup would open clients from the config's accounts
        self.clients = cast(Any, _OneClient(self._client))
        self.pool = ThreadPoolExecutor(self.config.prism.max_concurrency, thread_name_prefix=self.POOL_NAME)
        self.forget_lookups()

    def teardown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def run(self, requests: Iterable[PageRequest]) -> Iterator[pvalue.TaggedOutput]:
        """Each page request's outputs (split_page's tagged outputs), as pages come in: ``process``
        keeps ``max_concurrency`` pages in flight and hands on the first done; the last ones are
        handed on as each completes (``finish_bundle`` would wait for all of them first)."""
        self.setup()
        try:
            self.start_bundle()
            for request in requests:
                yield from self.process(request) or ()
            pending, self.pending = self.pending, set()
            for future in as_completed(pending):
                yield from self._outputs(future)
            for out in self.finish_bundle() or ():  # nothing is left pending: none, in practice
                yield pvalue.TaggedOutput(out.tag, cast(WindowedValue, out.value).value)
        finally:
            self.teardown()


def run_context(prism: PrismOptions, clock: Clock = SYSTEM_CLOCK) -> RunContext:
    """The stats window of a task: the last ``stats_window_s`` before now, as a pipeline run has it."""
    return RunContext.create(clock.time(), prism.stats_window_s, prism.stats_interval_s)
