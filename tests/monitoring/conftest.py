"""A registered champion for the monitoring tests (trained once per module)."""

from __future__ import annotations

import pytest

from registry.aliases import force
from serving.probe import serving_probe
from tests.support.db import fresh_database
from tests.support.promotion import relaxed
from training.runner import TrainConfig, run_training
from warehouse.db import sqlalchemy_url


@pytest.fixture(scope="module")
def champion(built, pg_server, tmp_path_factory):
    """An XGBoost trained on two symbols and forced to @champion, in a fresh MLflow store."""
    url, _ = built
    home = tmp_path_factory.mktemp("drift") / ".qtis"
    env = {
        "QTIS_MLFLOW_TRACKING_URI": sqlalchemy_url(fresh_database(pg_server)),
        "QTIS_HOME": str(home),
        "QTIS_DATABASE_URL": url,
        "DAGSTER_HOME": str(home / "dagster"),
        # the plumbing under test, not the calibration (the regime test and bench use 500)
        "QTIS_DRIFT_CALIBRATION_WINDOWS": "100",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        config = TrainConfig(models=("xgboost",), splits=2, xgb_estimators=30,
                             explain_samples=50)  # fmt: skip
        run_training(url, config, symbols=["IBM", "MSFT"])
        force(url, "qtis-xgboost", "1", "drift tests", serving_probe(url), relaxed())
        yield url, env, home
