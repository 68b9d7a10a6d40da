"""Typed settings of orchestration (``QTIS_DAGSTER_*``): where Dagster keeps its runs when the
warehouse is an external server."""

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
