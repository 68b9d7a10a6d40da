"""Feature-store assets in Dagster (real dbt, real GARCH) and `qtis features` as a subprocess."""

import dataclasses

import psycopg
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from orchestration.assets.features import feature_store, garch_vol
from orchestration.assets.ingest import raw_bars, raw_bars_checks
from orchestration.definitions import defs
from orchestration.resources import WarehouseResource, dbt_resource
from tests.support.cli import qtis
from transforms.spec import default_spec
from warehouse.settings import WarehouseSettings

MODELS = ("feat_recursive", "feat_window", "feat_cross_asset", "bar_features", "labels")
MODELS += (
    "training_set",
    "bars_weekly",
    "bars_daily",
    "calendar_days",
    "stg_bars",
    "market_holidays",
)


def test_dbt_models_are_assets_downstream_of_raw_bars():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    expected = {"raw_bars", "garch_vol", *(f"features/{m}" for m in MODELS)}
    assert expected <= keys, expected - keys
    parents = {k.to_user_string(): graph.get(k).parent_keys for k in graph.get_all_asset_keys()}
    assert AssetKey("raw_bars") in parents["features/feat_window"]
    assert AssetKey("garch_vol") in parents["features/bar_features"]
    assert AssetKey(["features", "bar_features"]) in parents["features/training_set"]
    dbt_checks = [k for k in graph.asset_check_keys if k.asset_key != AssetKey("raw_bars")]
    assert len(dbt_checks) >= 20  # dbt tests surface as asset checks


@pytest.mark.slow
def test_materialize_pipeline_with_dbt_checks(db_url):
    result = materialize(
        [raw_bars, *raw_bars_checks, garch_vol, feature_store],
        resources={"warehouse": WarehouseResource(database_url=db_url), "dbt": dbt_resource()},
        run_config={"ops": {"raw_bars": {"config": {"source": "bundled", "symbols": ["IBM"]}}}},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    checks = [
        c for c in result.get_asset_check_evaluations() if c.asset_key != AssetKey("raw_bars")
    ]
    assert len(checks) >= 20 and all(c.passed for c in checks), [
        c.check_name for c in checks if not c.passed
    ]
    assert result.asset_materializations_for_node("garch_vol")[0].metadata["fits"].value > 0
    with psycopg.connect(db_url) as conn:
        rows, garch = conn.execute(
            "select count(*), count(garch_vol) from features.bar_features"
        ).fetchone()
    assert rows == 3270 and garch > 0


@pytest.mark.slow
def test_features_cli_build_and_list(qtis_env, tmp_path):
    env = {"QTIS_DATABASE_URL": qtis_env, "QTIS_HOME": str(tmp_path / ".qtis")}
    assert qtis("ingest", "--symbols", "MSFT", env=env).returncode == 0
    out = qtis("features", "build", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    n = len(default_spec().columns())
    assert f"{n} features x 3,270 rows" in out.stdout, out.stdout
    assert "passed" in out.stdout
    again = qtis("features", "build", env=env)  # incremental: nothing new
    assert again.returncode == 0 and "0 rows written" in again.stdout, again.stdout
    listing = qtis("features", "list", env=env)
    assert (
        listing.returncode == 0 and "psar" in listing.stdout and f"{n} features" in listing.stdout
    )


@pytest.mark.slow
def test_backfilled_history_triggers_a_full_refresh(db_url):
    import io

    from rich.console import Console

    from cli.render.features import FeatureProgress
    from transforms.build import build_features
    from transforms.store import rewritten_history
    from warehouse.ingest import ingest
    from warehouse.providers.bundled import BundledProvider

    raw = BundledProvider().load(["IBM"])
    late = raw.frame[raw.frame["ts"] >= "2005-01-01"].reset_index(drop=True)
    from warehouse.providers.base import FrameProvider

    ingest(
        FrameProvider(dataclasses.replace(raw, frame=late, original=None)),
        db_url,
        WarehouseSettings(),
    )
    out = io.StringIO()
    with FeatureProgress(Console(file=out)) as progress:
        assert build_features(db_url, progress).dbt.success
    assert rewritten_history(db_url) == []
    ingest(
        BundledProvider(), db_url, WarehouseSettings(), ["IBM"]
    )  # the years before 2005 arrive later
    assert rewritten_history(db_url) == ["IBM"]
    with FeatureProgress(Console(file=out)) as progress:
        report = build_features(db_url, progress)
    assert "history changed for 1 symbol(s) (IBM)" in out.getvalue()
    assert report.dbt.full_refresh and rewritten_history(db_url) == []
    with psycopg.connect(db_url) as conn:
        first = conn.execute(
            "select ts, sma_200 from features.bar_features where symbol = 'IBM' order by ts limit 1"
        ).fetchone()
    assert first[0].year == 2000 and first[1] is None
