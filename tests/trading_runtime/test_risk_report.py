"""The run risk report without a database: the t copula among the VaR/ES methods and the VaR
backtest section, recomputed here from the same returns and weights, and both rendered by the
tear sheet (the full run through the CLI: tests/trading_runtime/test_tearsheet.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant.copula import fit_t_copula, simulate_portfolio
from quant.risk import empirical_var_es
from quant.var_backtest import METHODS, rolling_backtest
from trading_runtime.analytics.positions import Holdings
from trading_runtime.analytics.risk_report import risk_report
from trading_runtime.analytics.tearsheet import risk_section, risk_tables
from trading_runtime.instruments import Instrument
from trading_runtime.settings import RiskReportSettings

INSTRUMENTS = {s: Instrument(s, sector="tech") for s in "ABC"}


def report(
    bars: int, paths: int = 2_000, flat: bool = False
) -> tuple[dict, pd.DataFrame, pd.Series]:
    """Holdings of 40% A and 30% B (C sold) over ``bars`` bars of t-distributed returns (B's
    all zero when ``flat``)."""
    index = pd.bdate_range("2015-01-01", periods=bars, tz="UTC")
    rng = np.random.default_rng(1)
    returns = pd.DataFrame(rng.standard_t(5, (bars, 3)) * 0.01, index=index, columns=[*"ABC"])
    if flat:
        returns["B"] = 0.0
    values = pd.DataFrame({"A": 400.0, "B": 300.0, "C": 0.0}, index=index[-3:])
    held = Holdings(values / 10, values, pd.Series(1_000.0, index=index[-3:]))
    settings = RiskReportSettings(paths=paths, seed=3)
    return (
        risk_report(held, returns, INSTRUMENTS, settings),
        returns,
        pd.Series({"A": 0.4, "B": 0.3}),
    )


def test_the_report_has_the_copula_and_the_var_backtest():
    """300 bars: 50 of them after the 250-bar window, 3 refits."""
    risk, returns, weights = report(300)
    copula = {(r["level"], r["horizon"]): r for r in risk["var_es"] if r["method"] == "copula"}
    assert set(copula) == {(0.95, 1), (0.95, 10), (0.99, 1), (0.99, 10)}
    model = fit_t_copula(returns[["A", "B"]])
    for (level, horizon), row in copula.items():
        expected = empirical_var_es(simulate_portfolio(model, weights, horizon, 2_000, 3), level)
        assert (row["var"], row["es"]) == pytest.approx(expected, abs=1e-12)
        assert 0 < row["var"] < row["es"]
    backtest = risk["var_backtest"]
    assert (backtest["window"], backtest["refit"], backtest["bars"]) == (250, 21, 50)
    rows = pd.DataFrame(backtest["rows"])
    assert rows[["level", "method"]].values.tolist() == [
        [level, method] for level in (0.99, 0.95) for method in METHODS
    ]
    expected = rolling_backtest(returns[["A", "B"]], weights, (0.99, 0.95), window=250,
                                refit=21, last=250, paths=2_000, seed=3)  # fmt: skip
    pd.testing.assert_frame_equal(rows, expected)
    tables = risk_tables(risk)
    title, (columns, table) = tables["var-backtest"]
    assert "last 50 bars" in title and columns[0] == "exceptions" and len(table) == 16
    assert table[-1][0] == "copula, 95%"
    assert "copula, 10 bars" in [label for label, _ in tables["var-es"][1][1]]
    assert 'id="var-backtest"' in risk_section(risk)


def test_a_short_history_says_why_there_is_no_backtest():
    risk, _, _ = report(120, paths=500)
    assert risk["var_backtest"]["rows"] == []
    assert "needs more than 250" in risk["var_backtest"]["note"]
    title, (_, rows) = risk_tables(risk)["var-backtest"]
    assert rows == [] and "needs more than 250" in title
    assert all(r["var"] > 0 for r in risk["var_es"] if r["method"] == "copula")


def test_an_asset_that_never_moved_leaves_notes_not_a_failure():
    risk, _, _ = report(280, paths=500, flat=True)
    copula = [r for r in risk["var_es"] if r["method"] == "copula"]
    assert len(copula) == 4 and all("never move" in r["note"] for r in copula)
    rows = {(r["method"], r["level"]): r for r in risk["var_backtest"]["rows"]}
    assert "never move" in rows[("copula", 0.99)]["note"] and rows[("copula", 0.99)]["cc_p"] is None
    assert rows[("historical", 0.99)]["observations"] == 30
    labels = [label for label, _ in risk_tables(risk)["var-backtest"][1][1]]
    assert "copula, 99% (not computed)" in labels and "historical, 99%" in labels
