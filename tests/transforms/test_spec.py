"""The feature spec: derived columns and warm-ups, and errors that name the bad entry."""

import copy

import pytest
import yaml

from transforms.spec import KIND_INPUTS, KINDS, SPEC_PATH, SpecError, default_spec, parse_spec

RAW = yaml.safe_load(SPEC_PATH.read_text())


def test_default_spec_columns_and_warmups():
    spec = default_spec()
    columns = spec.columns()
    assert len(columns) >= 25 and len(set(columns)) == len(columns)
    for name in ("sma_200", "ema_12", "macd_hist", "rsi_14", "psar", "garch_vol", "corr_mkt_60"):
        assert name in columns
    assert spec.warmups["sma_200"] == 199 and spec.warmups["macd_signal"] == 33
    assert spec.warmups["rsi_14"] == 14 and spec.warmups["hv_60"] == 60
    assert spec.lookback == 200
    assert spec.label_columns()[:3] == ["fwd_ret_1", "fwd_dir_1", "fwd_vol_1"]


def test_adding_an_entry_adds_its_column():
    raw = copy.deepcopy(RAW)
    raw["windowed"].append({"name": "sma_100", "kind": "sma", "window": 100})
    spec = parse_spec(raw)
    assert "sma_100" in spec.columns() and spec.warmups["sma_100"] == 99
    assert {"name": "sma_100", "kind": "sma", "outputs": ["sma_100"], "window": 100} in (
        spec.dbt_vars()["windowed"]
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["windowed"].append({"name": "x", "kind": "ema", "window": 3}), "does not"),
        (lambda r: r["windowed"].append({"name": "x", "kind": "sma"}), "missing parameter"),
        (lambda r: r["windowed"].append({"name": "x", "kind": "sma", "window": 0}), "positive"),
        (
            lambda r: r["windowed"].append({"name": "sma_5", "kind": "sma", "window": 5}),
            "duplicate",
        ),
        (lambda r: r["labels"].update(horizons=[]), "horizons"),
    ],
)
def test_bad_entries_are_named(edit, message):
    raw = copy.deepcopy(RAW)
    edit(raw)
    with pytest.raises(SpecError, match=message):
        parse_spec(raw)


def test_every_kind_declares_its_inputs():
    """A new kind cannot forget to say what it reads; close-only symbols lose exactly these."""
    assert set(KIND_INPUTS) == set(KINDS)
    assert all(inputs and set(inputs) <= set("ohlcv") for inputs in KIND_INPUTS.values())
    spec = default_spec()
    assert set(spec.column_inputs()) == set(spec.columns())
    needing = spec.columns_needing("hlv")
    assert spec.columns_needing("ohlv") == needing  # no feature reads the open
    assert {"atr_14", "psar", "obv", "vpt", "ad", "volume_z_20", "pivot", "high_20"} <= set(needing)
    assert not {"ema_12", "rsi_14", "ret_1", "hv_20", "corr_mkt_60", "garch_vol"} & set(needing)


def test_series_features_stay_out_of_the_default_feature_set():
    spec = default_spec()
    assert spec.series.features and not spec.series.train
    assert not set(spec.series.columns()) & set(spec.columns())
    raw = copy.deepcopy(RAW)
    raw["series"]["train"] = True
    trained = parse_spec(raw)
    assert trained.columns() == spec.columns() + spec.series.columns()
    assert trained.dbt_vars()["series_depth"] == {
        "unemp": 2,
        "infl": 8,
        "tbilrate": 5,
        "realgdp": 5,
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "series": "s", "kind": "median"}, "is not one of"),
        ({"name": "x", "series": "s", "kind": "change"}, "releases must be a positive"),
        ({"name": "x", "series": "s", "kind": "zscore", "window": 1}, "at least 2"),
        ({"name": "x", "series": "s", "kind": "value", "window": 3}, "unknown parameter"),
        ({"name": "x", "kind": "value"}, "needs 'name', 'series' and 'kind'"),
        ({"name": "GDP-z", "series": "s", "kind": "value"}, "lower-case"),
        ({"name": "sma_5", "series": "s", "kind": "value"}, "duplicate"),
    ],
)
def test_bad_series_entries_are_named(entry, message):
    raw = copy.deepcopy(RAW)
    raw["series"]["features"].append(entry)
    with pytest.raises(SpecError, match=message):
        parse_spec(raw)
