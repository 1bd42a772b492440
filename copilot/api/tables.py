"""A stored version as a user downloads it: the table alone, as ``copilot clean`` writes it.

Versions keep pandas' row index (it carries the original row numbers that train-only steps recorded),
as a ``__index_level_0__`` column or range metadata once rows were dropped. A download leaves it out,
in CSV and in Parquet, so every reader (pandas, polars, DuckDB, Spark) sees the table's own columns and
rows numbered from 0, as ``copilot clean`` writes them.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from copilot.data.export import guard_formulas

BATCH_ROWS = 50_000


def csv_chunks(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[bytes]:
    """The Parquet file as UTF-8 CSV, a batch of rows at a time, never whole in memory."""
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    yield _csv(schema.empty_table(), header=True)
    for batch in parquet.iter_batches(batch_size=batch_rows):
        yield _csv(pa.Table.from_batches([batch], schema), header=False)


def parquet_without_index(path: Path, folder: Path, batch_rows: int = BATCH_ROWS) -> Path | None:
    """A temporary copy of ``path`` in ``folder`` with the default index (0, 1, 2, …) and no index column;
    None when it already has that."""
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    pandas = schema.pandas_metadata or {}
    if all(_is_default(column) for column in pandas.get("index_columns", [])):
        return None
    index = [column for column in pandas["index_columns"] if isinstance(column, str)]
    keep = [name for name in schema.names if name not in index]
    pandas = {**pandas, "index_columns": [], "columns": [c for c in pandas["columns"] if c["field_name"] in keep]}
    metadata = {**(schema.metadata or {}), b"pandas": json.dumps(pandas).encode()}
    target = pa.schema([schema.field(name) for name in keep], metadata=metadata)
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix="download-", suffix=".parquet")
    try:
        with os.fdopen(fd, "wb") as handle, pq.ParquetWriter(handle, target) as writer:
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=keep):
                writer.write_table(pa.Table.from_batches([batch]))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _is_default(index: str | dict[str, object]) -> bool:
    """A stored index that reads back as 0, 1, 2, …: no column, a range from 0 by 1."""
    return isinstance(index, dict) and (index.get("kind"), index.get("start"), index.get("step")) == ("range", 0, 1)


def _csv(table: pa.Table, header: bool) -> bytes:
    buffer = io.StringIO()
    guard_formulas(table.to_pandas()).to_csv(buffer, index=False, header=header)
    return buffer.getvalue().encode("utf-8")
