"""Keeps third-party import-time noise out of the command line's output.

Importing Apache Beam 2.77.0 without its [gcp] extra logs, on the root logger,
"apitools not found, and bigquery client libraries are not available despite
the import not raising an ImportError." (apache_beam/io/gcp/internal/clients/
bigquery/__init__.py, at import). The collector uses no BigQuery, so every
``python -m pipeline`` call, ``--help`` included, opened with a warning that
asks nothing of anyone. Exactly that record is dropped; every other warning,
Beam's included, still shows.
"""
from __future__ import annotations

import logging

BEAM_APITOOLS_MISSING = "apitools not found, and bigquery client libraries are not available"


class DropImportNoise(logging.Filter):
    """A root-logger filter (it sees only what is logged on the root logger
    itself, as Beam's ``logging.warning`` at import is)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and isinstance(record.msg, str)
                    and record.msg.startswith(BEAM_APITOOLS_MISSING))


def drop_import_noise() -> None:
    """Installs the filter; call it before Beam is first imported."""
    root = logging.getLogger()
    if not any(isinstance(f, DropImportNoise) for f in root.filters):
        root.addFilter(DropImportNoise())
