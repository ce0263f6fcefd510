"""Errors shared by the connectors.

Messages never include credentials: they name the account, the endpoint and
what to do, so they can go straight into logs and the run report.
"""
from __future__ import annotations


class ConnectorError(Exception):
    """Base class: ``transient`` tells callers whether a retry may help."""

    transient: bool = False


def is_transient(err: BaseException) -> bool:
    """The classifier of ``connectors.retry.call_with_retries`` for the connectors' errors."""
    return isinstance(err, ConnectorError) and err.transient


class PrismError(ConnectorError):
    """A Prism Central call failed after the client's own retries."""

    def __init__(self, message: str, status: int | None = None, transient: bool = False,
                 retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.retry_after = retry_after  # what the server's Retry-After asked, in seconds


class PrismAuthError(PrismError):
    """Prism rejected the credentials (401/403): never retried."""


class PrismResponseError(PrismError):
    """Prism answered something that is not the v3 shape we rely on."""


class CloudForetError(ConnectorError):
    """A CloudForet call failed; ``code`` is the gRPC status code name."""

    def __init__(self, message: str, code: str = "UNKNOWN", transient: bool = False):
        super().__init__(message)
        self.code = code
        self.transient = transient
