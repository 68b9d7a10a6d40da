"""Files read piece by piece, so that memory follows ``QTIS_INGEST_CHUNK_BYTES``, not the file.

CSV (plain or gzip/bz2/xz-compressed) is decompressed as a stream and cut into blocks of about
``chunk_bytes`` that end where a record ends: at a line break outside double quotes (RFC 4180
quoting, so a quoted field may span lines). Each block is parsed by pandas with the header's
column names. A record longer than ``chunk_bytes`` (a file with no line ends, such as a gzip
bomb of one line) fails the file once that much has been read. Parquet is read in record
batches of about ``chunk_bytes`` of uncompressed data.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from warehouse.providers.base import DataSourceError

_DECOMPRESSORS: dict[str, Callable[..., BinaryIO]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}
# Strings in, so that a bad cell is quarantined with its raw text, not silently NaN.
_CSV_OPTIONS = {
    "dtype": str,
    "keep_default_na": False,
    "na_values": [""],
    "skipinitialspace": True,
    "encoding": "utf-8",
    # never take a first column as the index: a line with more fields than the header is an
    # error wherever it falls (pandas would otherwise guess from the first line of each block)
    "index_col": False,
}
_QUOTE, _NEWLINE = ord('"'), ord("\n")


def last_record_end(block: bytes) -> int:
    """Index of the last line break outside double quotes in ``block`` (which starts at a
    record start), or -1."""
    if b'"' not in block:
        return block.rfind(b"\n")
    data = np.frombuffer(block, np.uint8)
    quoted = data == _QUOTE
    np.logical_xor.accumulate(quoted, out=quoted)  # inside quotes after an odd number of them
    ends = data == _NEWLINE
    np.logical_and(ends, np.logical_not(quoted, out=quoted), out=ends)
    if not ends.any():
        return -1
    return len(block) - 1 - int(np.argmax(ends[::-1]))


def record_blocks(stream: BinaryIO, chunk_bytes: int, origin: str) -> Iterator[bytes]:
    """Blocks of whole records of about ``chunk_bytes`` each (the last may be shorter)."""
    tail = b""
    while data := stream.read(chunk_bytes):
        block = tail + data
        end = last_record_end(block)
        if end < 0:
            if len(block) > chunk_bytes:
                raise DataSourceError(
                    f"{origin}: a line is longer than {chunk_bytes:,} bytes "
                    "(QTIS_INGEST_CHUNK_BYTES): not a table of bars, or raise the setting"
                )
            tail = block
            continue
        piece, tail = block[: end + 1], block[end + 1 :]
        del block, data  # a generator's locals live on while the consumer works
        yield piece
    if tail.strip():
        yield tail


def _parse(block: bytes, names: list[str] | None) -> pd.DataFrame:
    header = {"header": 0} if names is None else {"header": None, "names": names}
    with warnings.catch_warnings():
        # "Length of header or names does not match length of data": a line too long
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return pd.read_csv(io.BytesIO(block), **_CSV_OPTIONS, **header)


def csv_chunks(path: Path, chunk_bytes: int) -> Iterator[pd.DataFrame]:
    """The rows of a CSV file as raw strings, a block at a time; the first frame may be empty
    (the header alone)."""
    if path.stat().st_size == 0:
        raise DataSourceError(f"{path}: the file is empty")
    opener = _DECOMPRESSORS.get(path.suffix.lower(), open)
    names: list[str] | None = None
    try:
        with opener(path, "rb") as stream:
            for block in record_blocks(stream, chunk_bytes, str(path)):
                frame = _parse(block, names)
                names = names or [str(c) for c in frame.columns]
                del block
                yield frame
                del frame  # hold no chunk while the next one is read
    except pd.errors.EmptyDataError as exc:
        raise DataSourceError(f"{path}: the file is empty") from exc
    except (
        UnicodeDecodeError,
        pd.errors.ParserError,
        pd.errors.ParserWarning,
        OSError,
        EOFError,
        zlib.error,
        lzma.LZMAError,
    ) as exc:
        raise DataSourceError(f"{path}: not a readable CSV file ({type(exc).__name__})") from exc
    if names is None:
        raise DataSourceError(f"{path}: the file is empty")


def parquet_chunks(path: Path, chunk_bytes: int) -> Iterator[pd.DataFrame]:
    """Record batches of about ``chunk_bytes`` (by the file's uncompressed size per row); the
    first frame is the empty schema, so that a file without rows still has its columns."""
    try:
        with pq.ParquetFile(path) as file:
            meta = file.metadata
            size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            rows = max(1, int(chunk_bytes * max(meta.num_rows, 1) / max(size, 1)))
            yield _index_as_columns(file.schema_arrow.empty_table().to_pandas())
            for batch in file.iter_batches(batch_size=rows):
                yield _index_as_columns(batch.to_pandas())
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise DataSourceError(f"{path}: not a readable Parquet file ({exc})") from exc


def _index_as_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A named index pandas wrote (``DataFrame.to_parquet`` of a panel indexed by ``Date``) is a
    column like any other."""
    if any(name is not None for name in frame.index.names):
        return frame.reset_index()
    return frame
