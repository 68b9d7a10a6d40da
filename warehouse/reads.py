"""Columnar reads for training and analytics: COPY TO streamed into Arrow, never row by row."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from warehouse.db import connect

BAR_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("ts_us", pa.int64()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
    ]
)


def read_bars(
    url: str,
    symbols: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pa.Table:
    """Bars as an Arrow table sorted by (symbol, ts); ``ts`` is ``timestamp[us, UTC]``."""
    where = [sql.SQL("true")]
    if symbols:
        where.append(sql.SQL("symbol = any({})").format(sql.Literal(list(symbols))))
    if start is not None:
        where.append(sql.SQL("ts >= {}").format(sql.Literal(start)))
    if end is not None:
        where.append(sql.SQL("ts < {}").format(sql.Literal(end)))
    query = sql.SQL(
        "select symbol, (extract(epoch from ts) * 1000000)::bigint, open, high, low, close, "
        "volume from market.bars where {} order by symbol, ts"
    ).format(sql.SQL(" and ").join(where))
    table = read_query(url, query, BAR_SCHEMA)
    ts = pc.cast(table["ts_us"], pa.timestamp("us", tz="UTC"))
    return table.set_column(1, "ts", ts)


def read_query(url: str, query: sql.Composable, schema: pa.Schema) -> pa.Table:
    """A select streamed with COPY (CSV) straight into Arrow columns of ``schema``."""
    copy_query = sql.SQL("copy ({}) to stdout (format csv)").format(query)
    buffer = io.BytesIO()
    with connect(url) as conn, conn.cursor() as cur, cur.copy(copy_query) as copy:
        for chunk in copy:
            buffer.write(chunk)
    if not buffer.getbuffer().nbytes:
        return schema.empty_table()
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=schema.names, block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(column_types=schema),
    )
