"""The test session's database servers; every test that needs data gets its own database.

Two backends (tests/support/backends.py): the embedded server, and an external PostgreSQL 15 +
TimescaleDB started from ../shared/timescaledb. Tests marked ``storage`` run once on each
(``test_x[embedded]``, ``test_x[timescale]``); every other test that needs a database runs on the
embedded one. ``--backends`` chooses: ``auto`` (the default) is both, and skips the TimescaleDB
runs with the reason when the server binaries are missing; naming the backends
(``--backends embedded,timescale``, what CI passes) makes a missing one an error instead.

What is slow to make (a migrated schema, the bundled sample with a full feature build) is made
once per backend and copied (``create database ... template``, a file copy) for each user.

Markers: ``postgres`` is set on every test whose fixtures reach ``pg_server``; ``slow`` is set by
hand on the multi-process, server, training, demo and regime tests, so ``pytest -m "not slow"``
is the quick tier (``make test-quick``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.aliases import force
from serving.probe import serving_probe
from tests.support import timescale
from tests.support.backends import SELECTED, Backends, parse
from tests.support.db import copy_database, drop_database, fresh_database
from tests.support.planted import SYMBOLS
from tests.support.promotion import relaxed
from training.data import load_training_data
from training.runner import TrainConfig, run_training
from training.settings import TrackingSettings
from training.tracking import configure
from warehouse.db import sqlalchemy_url
from warehouse.providers.base import RawBars
from warehouse.providers.bundled import BundledProvider


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default="auto",
        help="database backends of the tests marked storage: embedded, timescale (comma-"
        "separated; a named one that cannot start is an error) or auto (both; a missing "
        "TimescaleDB is skipped with the reason)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if worker := os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs workers (xdist)
        # one dbt target and log folder per worker: two builds in one folder overwrite each other
        os.environ["DBT_TARGET_PATH"] = f"target-{worker}"
        os.environ["DBT_LOG_PATH"] = f"logs-{worker}"
    option = config.getoption("--backends")
    names = parse(option)
    if option != "auto" and "timescale" in names and (why := timescale.missing()):
        raise pytest.UsageError(f"--backends {option}: {why}")
    config.stash[SELECTED] = names


# the project's loggers: its packages' module loggers and the named ones (qtis.alerts, ...)
PROJECT_LOGGERS = frozenset(
    [
        "qtis",
        "core",
        "warehouse",
        "quant",
        "transforms",
        "training",
        "registry",
        "serving",
        "trading_runtime",
        "monitoring",
        "orchestration",
        "cli",
        "demo",
    ]
)


@pytest.fixture(autouse=True)
def _project_loggers_enabled() -> None:
    """Each test hears the project's loggers: a library's logging.config call in an earlier
    test on the worker (``fileConfig`` disables every logger that exists) would otherwise
    silence them, and a test asserting on a warning or an alert would fail by test order."""
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and name.split(".")[0] in PROJECT_LOGGERS:
            logger.disabled = False


def pytest_report_header(config: pytest.Config) -> str:
    names = config.stash[SELECTED]
    why = timescale.missing() if "timescale" in names else None
    return f"database backends of the storage tests: {', '.join(names)}" + (
        f" (timescale skipped: {why})" if why else ""
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A ``storage`` test that reaches a database runs once per backend."""
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("storage"):
        names = metafunc.config.stash[SELECTED]
        metafunc.parametrize("backend", names, indirect=True, scope="module")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the database server ``postgres``."""
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    pool = Backends(tmp_path_factory)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    """The backend of this test: its ``storage`` parameter, else the embedded server."""
    name = getattr(request, "param", "embedded")
    if name == "timescale" and (why := timescale.missing()):
        pytest.skip(f"TimescaleDB backend: {why}")
    return name


@pytest.fixture(scope="session")
def both_backends(request: pytest.FixtureRequest, backends: Backends) -> Backends:
    """The servers, for a test that compares the backends with each other."""
    selected = request.config.stash[SELECTED]
    if len(selected) < 2:
        pytest.skip(f"compares the backends; --backends has only {selected[0]}")
    if why := timescale.missing():
        pytest.skip(f"TimescaleDB backend: {why}")
    return backends


@pytest.fixture(scope="module")
def pg_server(backends: Backends, backend: str) -> str:
    """The admin URL of this test's server."""
    return backends.server(backend)


@pytest.fixture(scope="module")
def migrated_template(backends: Backends, backend: str) -> str:
    return backends.migrated(backend)


@pytest.fixture
def empty_db_url(pg_server: str) -> Iterator[str]:
    """A new, empty database (no migrations applied)."""
    url = fresh_database(pg_server)
    yield url
    drop_database(pg_server, url)


@pytest.fixture
def db_url(pg_server: str, migrated_template: str) -> Iterator[str]:
    """A new database migrated to the current schema."""
    url = copy_database(pg_server, migrated_template)
    yield url
    drop_database(pg_server, url)


@pytest.fixture
def qtis_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point QTIS settings (and so the CLI) at the test database."""
    monkeypatch.setenv("QTIS_DATABASE_URL", db_url)
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / ".qtis"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    return db_url


@pytest.fixture(scope="session")
def bundled() -> RawBars:
    return BundledProvider().load()


@pytest.fixture(scope="module")
def built_template(backends: Backends, backend: str, bundled: RawBars):
    """The whole bundled sample, its GARCH fits and a full feature build, made once per backend."""
    return backends.built(backend, bundled)


@pytest.fixture(scope="module")
def built(pg_server, built_template):
    """A copy of ``built_template`` for one module, which may write to it."""
    template_url, report = built_template
    return copy_database(pg_server, template_url), report


# the bundled sample's bars without a feature build (the engine computes its features online):
# the runtime's and the trade CLI's tests
@pytest.fixture(scope="module")
def market_template(backends: Backends, backend: str, bundled: RawBars) -> str:
    return backends.market(backend, bundled)


@pytest.fixture(scope="module")
def market(pg_server, market_template) -> str:
    return copy_database(pg_server, market_template)


# an XGBoost champion in a fresh MLflow store: the monitoring tests and Dagster's monitoring tests
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
        tracking = TrackingSettings()
        run_training(url, config, symbols=["IBM", "MSFT"], tracking=tracking)
        probe = serving_probe(url, tracking=tracking)
        force(url, "qtis-xgboost", "1", "drift tests", probe, relaxed(), tracking=tracking)
        yield url, env, home


# a fresh MLflow store on the built warehouse, for planted versions: promotion, alias moves, reload
@pytest.fixture(scope="module")
def planted_store(built, pg_server, tmp_path_factory):
    """(warehouse url, training data of the planted SYMBOLS, TrackingSettings of a fresh MLflow
    store for the module: versions count from 1); the environment points at the same store."""
    url, _ = built
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QTIS_MLFLOW_TRACKING_URI", sqlalchemy_url(fresh_database(pg_server)))
        mp.setenv("QTIS_HOME", str(tmp_path_factory.mktemp("planted") / ".qtis"))
        settings = TrackingSettings()
        configure(url, settings)
        yield url, load_training_data(url, SYMBOLS), settings
