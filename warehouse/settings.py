"""Typed settings for the warehouse, read from ``QTIS_*`` environment variables."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from core.errors import ConfigError
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
    a file named by ``QTIS_ALPACA_KEY_ID_FILE`` / ``QTIS_ALPACA_SECRET_KEY_FILE`` (Docker
    secrets, systemd ``LoadCredential``), never from argv, and are never logged. The URLs
    default to Alpaca's paper trading; tests and the demo point them at the local stand-in
    market (``trading_runtime.alpaca.standin``)."""

    # a validation error would otherwise repeat the input, keys included
    model_config = SettingsConfigDict(env_prefix="QTIS_ALPACA_", hide_input_in_errors=True)

    key_id: SecretStr | None = Field(None, description="API key id (APCA-API-KEY-ID)")
    secret_key: SecretStr | None = Field(None, description="API secret key")
    key_id_file: Path | None = Field(
        None, description="file holding the API key id (instead of QTIS_ALPACA_KEY_ID)"
    )
    secret_key_file: Path | None = Field(
        None, description="file holding the API secret key (instead of QTIS_ALPACA_SECRET_KEY)"
    )
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

    @model_validator(mode="before")
    @classmethod
    def _read_key_files(cls, data: Any) -> Any:
        """Fill ``key_id`` / ``secret_key`` from their ``*_file``; both at once is ambiguous."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in ("key_id", "secret_key"):
            path = data.get(f"{name}_file")
            if not path:
                continue
            variable = f"QTIS_ALPACA_{name.upper()}"
            if data.get(name):
                raise ValueError(f"set {variable} or {variable}_FILE, not both")
            try:
                data[name] = Path(path).read_text().strip()
            except OSError as exc:
                raise ValueError(f"{variable}_FILE: cannot read {path}: {exc.strerror}") from None
        return data

    def credentials(self) -> tuple[str, str]:
        """The key id and secret in clear, for the client that sends them; an error naming the
        variables when either is missing."""
        if self.key_id is None or self.secret_key is None:
            raise ConfigError(
                "Alpaca keys are not set: set QTIS_ALPACA_KEY_ID and QTIS_ALPACA_SECRET_KEY "
                "(or QTIS_ALPACA_KEY_ID_FILE and QTIS_ALPACA_SECRET_KEY_FILE)"
            )
        return self.key_id.get_secret_value(), self.secret_key.get_secret_value()


class VendorSettings(QtisSettings):
    """A vendor as a live source (`qtis trade live --feed alpaca|yahoo`): how bars are gathered
    into loads, how a lost connection is retried, how far back a first backfill reaches and
    how often a polled vendor is asked."""

    model_config = SettingsConfigDict(env_prefix="QTIS_VENDOR_")

    frequency: Literal["1min", "1d"] = Field(
        "1min", description="bars streamed, polled and backfilled: minute or daily"
    )
    backfill_days: float = Field(
        5.0,
        gt=0,
        description="a symbol with no stored bar is backfilled this many days back (others: "
        "from their last stored bar)",
    )
    batch_seconds: float = Field(
        0.05,
        ge=0,
        le=10,
        description="streamed bars that arrive within this long of each other load together",
    )
    backoff_initial_seconds: float = Field(
        1.0, gt=0, description="first wait before reconnecting (then doubled each failure)"
    )
    backoff_max_seconds: float = Field(
        60.0, gt=0, description="longest wait between reconnects or failed polls"
    )
    backoff_jitter: float = Field(
        0.5, ge=0, le=0.5, description="share of each wait removed at random (spreads clients)"
    )
    poll_seconds: float = Field(
        60.0, gt=0, description="a polled vendor (yahoo) is asked this often"
    )
    yahoo_period: str = Field(
        "5d", description="the recent window a Yahoo poll asks for (yfinance period: 1d, 5d, 1mo)"
    )
