"""How records become the bytes of one file: Avro or Parquet.

Shaped like Beam's ``fileio.FileSink``: ``open(fh)`` starts a file on a handle the
engine (``write_files.py``) opened, ``write(record)`` adds a record, ``flush()``
writes what is buffered; the engine closes the handle. The engine copies the
sink given to it for each file it opens, so a sink holds one file's state.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, BinaryIO, Callable

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

# fastavro's default block is 16 kB, two or three records of a VM's size: some 7,500
# compressions and writes per 10k VMs. 1 MiB blocks are still small beside a page.
AVRO_BLOCK_BYTES = 1 << 20


class FileSink(ABC):
    """One file's writer; ``suffix`` ends the names of its files."""

    suffix = ""

    @abstractmethod
    def open(self, fh: BinaryIO) -> None:
        ...

    @abstractmethod
    def write(self, record: Any) -> None:
        ...

    @abstractmethod
    def flush(self) -> None:
        ...


class AvroSink(FileSink):
    """Records (dicts of ``schema``) -> an Avro container file in ``codec`` blocks."""

    suffix = ".avro"

    def __init__(self, schema: dict, codec: str = "snappy"):
        self.schema, self.codec = schema, codec
        self._parsed: Any = None

    def open(self, fh: BinaryIO) -> None:
        if self._parsed is None:
            self._parsed = fastavro.parse_schema(self.schema)
        self.writer = fastavro.write.Writer(fh, self._parsed, self.codec, sync_interval=AVRO_BLOCK_BYTES)

    def write(self, record: dict) -> None:
        self.writer.write(record)

    def flush(self) -> None:
        self.writer.flush()


def _rows(schema: pa.Schema) -> Callable[[list], pa.Table]:
    return lambda records: pa.Table.from_pylist(records, schema=schema)


class ParquetSink(FileSink):
    """Records -> a Parquet file of ``schema``, a row group every ``rows_per_group`` rows.

    ``to_table`` turns the buffered records into one table (by default, each record
    is a row); ``weight_of`` says how many rows a record stands for (a record may be
    a batch of points). Each row group is one call of ``to_table``, so a table it
    sorts is sorted within each row group, which is what readers prune by."""

    suffix = ".parquet"

    def __init__(self, schema: pa.Schema, to_table: Callable[[list], pa.Table] | None = None,
                 rows_per_group: int = 5_000, weight_of: Callable[[Any], int] | None = None,
                 compression: str = "snappy"):
        self.schema, self.rows_per_group, self.compression = schema, rows_per_group, compression
        self.to_table = to_table or _rows(schema)
        self.weight_of = weight_of

    def open(self, fh: BinaryIO) -> None:
        self.writer = pq.ParquetWriter(fh, self.schema, compression=self.compression)
        self.records: list = []
        self.rows = 0

    def write(self, record: Any) -> None:
        self.records.append(record)
        self.rows += 1 if self.weight_of is None else self.weight_of(record)
        if self.rows >= self.rows_per_group:
            self._write_group()

    def _write_group(self) -> None:
        if self.records:
            self.writer.write_table(self.to_table(self.records), row_group_size=self.rows_per_group)
            self.records, self.rows = [], 0

    def flush(self) -> None:
        self._write_group()
        self.writer.close()  # the footer; the handle stays the engine's to close
