"""Dagster resources for systems outside the code: the Postgres warehouse (and the MLflow and
Optuna stores beside it) and dbt."""

import sys
from pathlib import Path

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource
from pydantic import PrivateAttr

from training.settings import TrackingSettings, TuningSettings
from transforms.dbt_runner import PROJECT_DIR
from warehouse.db import database_url
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings
from warehouse.storage import configure_storage


class WarehouseResource(ConfigurableResource):
    """The QTIS Postgres database, migrated to the current schema (and TimescaleDB's policies
    applied) on first use.

    ``database_url`` overrides ``QTIS_DATABASE_URL``; with neither, the embedded server is used.
    """

    database_url: str | None = None
    _url: str | None = PrivateAttr(default=None)

    def settings(self) -> WarehouseSettings:
        overrides = {"database_url": self.database_url} if self.database_url else {}
        return WarehouseSettings(**overrides)

    def url(self) -> str:
        if self._url is None:
            settings = self.settings()
            url = database_url(settings)
            migrate(url)
            configure_storage(url, settings)
            self._url = url
        return self._url

    def tracking(self) -> TrackingSettings:
        """The MLflow store beside this database (QTIS_MLFLOW_*, artifacts under QTIS_HOME),
        built here for the asset that runs."""
        return TrackingSettings()

    def tuning(self) -> TuningSettings:
        """The Optuna store beside this database (QTIS_TUNE_*), built here for the asset."""
        return TuningSettings()


def dbt_resource() -> DbtCliResource:
    # the dbt installed next to this interpreter, whether or not the venv is on PATH
    executable = Path(sys.executable).with_name("dbt")
    return DbtCliResource(
        project_dir=str(PROJECT_DIR),
        profiles_dir=str(PROJECT_DIR),
        dbt_executable=str(executable) if executable.exists() else "dbt",
    )
