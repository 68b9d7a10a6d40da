"""Typed settings for the warehouse, read from ``QTIS_*`` environment variables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from core.settings import QtisSettings


class WarehouseSettings(QtisSettings):
    """Where the data lives and how ingestion judges it.

    ``database_url`` wins when set; otherwise an embedded Postgres keeps its data under
    ``home``/pg so that a fresh clone needs no database server.
    """

    model_config = SettingsConfigDict(env_prefix="QTIS_")

    database_url: str | None = Field(
        default=None, description="Postgres URL; unset means the embedded server under QTIS_HOME."
    )
    home: Path = Field(default=Path(".qtis"), description="Directory for local state.")
    database_name: str = Field(default="qtis", description="Database used on the embedded server.")
    max_quarantine_ratio: float = Field(
        default=0.05, ge=0, le=1, description="Asset check fails above this share of bad rows."
    )
    freshness_max_age_hours: float = Field(
        default=96.0, gt=0, description="Asset check warns when the newest bar is older."
    )
    spike_zscore: float = Field(
        default=12.0, gt=0, description="Robust z-score of a log return that flags a spike."
    )
    gap_factor: float = Field(
        default=5.0, gt=1, description="A gap is flagged when spacing exceeds this x median."
    )
    # pandas holds timestamps from 1677-09-22 to 2262-04-11: the window stays inside that range
    ingest_earliest: date = Field(
        default=date(1900, 1, 1),
        ge=date(1678, 1, 1),
        description="Bars dated before this day (UTC) are quarantined.",
    )
    ingest_future_days: int = Field(
        default=1,
        ge=0,
        le=36_500,
        description="Bars dated later than today (UTC) plus this many days are quarantined.",
    )
    ingest_chunk_bytes: int = Field(
        default=8 * 2**20,
        ge=1024,
        le=2**30,
        description="Files are read in pieces of this many (decompressed) bytes; an ingest's "
        "memory grows with this, not with the file. A longer line fails the file.",
    )

    tsdb_chunk_days: float | None = Field(
        default=None,
        gt=0,
        le=3650,
        description="TimescaleDB: chunk interval of market.bars in days (0.25 = 6 hours); "
        "unset: chosen from the bar frequency of the first load (daily bars: 365).",
    )
    tsdb_compress_after_days: float = Field(
        default=30.0,
        ge=0,
        description="TimescaleDB: compress the chunks of market.bars whose data "
        "is older than this many days; 0: no compression policy.",
    )
    tsdb_rollup_refresh_minutes: float = Field(
        default=60.0,
        gt=0,
        description="TimescaleDB: how often the policies refresh the daily and weekly "
        "continuous aggregates (reads are current in between: real-time aggregation).",
    )

    @property
    def pgdata(self) -> Path:
        return (self.home / "pg").resolve()

    @property
    def uses_embedded(self) -> bool:
        return not self.database_url


def get_settings() -> WarehouseSettings:
    return WarehouseSettings()


class AlpacaSettings(QtisSettings):
    """Where Alpaca is and who we are to it: the market data adapter (warehouse) and the broker
    adapter (trading_runtime) read the same keys. The keys come from the environment or from
    files in ``secrets_dir`` (one file per key, named like the variable), never from argv, and
    are never logged. The URLs default to Alpaca's paper trading; tests and the demo point them
    at the local stand-in market (``trading_runtime.alpaca.standin``)."""

    model_config = SettingsConfigDict(env_prefix="QTIS_ALPACA_")

    key_id: SecretStr | None = Field(None, description="API key id (APCA-API-KEY-ID)")
    secret_key: SecretStr | None = Field(None, description="API secret key")
    trading_url: str = Field(
        "https://paper-api.alpaca.markets", description="trading REST base URL (paper or live)"
    )
    data_url: str = Field("https://data.alpaca.markets", description="market data REST base URL")
    stream_url: str | None = Field(
        None, description="trade-updates WebSocket URL; unset: derived from trading_url"
    )
    data_stream_url: str | None = Field(
        None, description="market data WebSocket URL; unset: Alpaca's for data_feed"
    )
    data_feed: str = Field("iex", description="market data feed: iex (free) or sip")
    paper: bool = Field(True, description="a paper account (False: real money)")
