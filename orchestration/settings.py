"""Typed settings of orchestration (``QTIS_DAGSTER_*``): where Dagster keeps its runs when the
warehouse is an external server, what the daily pull loads, and when intraday bars are stale."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from core.settings import QtisSettings


class DagsterSettings(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_DAGSTER_")

    database: str = Field(
        default="dagster",
        description="Database for Dagster's runs, event logs and schedules beside the warehouse"
        " when QTIS_DATABASE_URL is set (created if missing)",
    )
    pull_source: str = Field(
        default="yfinance",
        description="raw_bars source of the scheduled daily pull (daily_pull_schedule), one"
        " session's partition after each XNYS close",
    )
    pull_symbols: list[str] = Field(
        default_factory=list,
        description="symbols of the daily pull (a vendor source needs them; empty: all the"
        " source has)",
    )
    intraday_stale_minutes: float = Field(
        default=5.0,
        gt=0,
        description="while XNYS is open, the newest bar in market.bars older than this fails"
        " the raw_bars_intraday_freshness check (the stream writes bars, Dagster watches)",
    )
