"""The tear sheet end to end: a real backtest through `qtis trade backtest --tear-sheet`, the
`qtis trade report` command on its stream, and the page opened in headless Chromium, where
every chart must render with no console error and no request leaving the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from trading_runtime.portfolio.risk import portfolio_var_es
from warehouse.reads import read_bars

pytestmark = pytest.mark.slow  # a full backtest and the page in headless Chromium

CHROMIUM = Path("/usr/bin/chromium")
CHARTS = 8  # equity, drawdown, rolling Sharpe, rolling vol, monthly, exposure, weights, returns
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def backtest(market, tmp_path_factory):
    """One short backtest, written as JSON and as a tear sheet."""
    out = tmp_path_factory.mktemp("tearsheet")
    env = {"QTIS_DATABASE_URL": market, "QTIS_HOME": str(out / ".qtis")}
    runner = CliRunner()

    def trade(*args: str):
        return runner.invoke(app, ["trade", *args], env=env)

    html, data = out / "sheets" / "bt.html", out / "bt.json"
    result = trade("backtest", "--signal", "sma-cross", "--fast", "5", "--slow", "20",
                   "--start", "2011-06-01", "--stream", "sheet-bt", "--json-out", str(data),
                   "--tear-sheet", str(html))  # fmt: skip
    assert result.exit_code == 0, result.output
    return trade, out, html, data, result.output


def test_backtest_writes_the_tear_sheet_and_prints_its_path(backtest):
    _, _, html, data, output = backtest
    assert f"tear sheet: {html.resolve()}" in output
    page = html.read_text()
    assert page.count('class="plotly-graph-div"') == CHARTS
    assert page.count("<script") == CHARTS + 1  # plotly.js inlined once, then one per chart
    assert "cdn.plot.ly" not in page.split("</head>")[1]  # nothing to fetch from the web
    assert "Conventions" in page and "252 periods per year" in page
    for table in ("metrics", "execution", "var-es", "var-backtest", "stress", "shocks", "sectors",
                  "correlation"):  # fmt: skip
        assert f'id="{table}"' in page, table
    metrics = json.loads(data.read_text())["metrics"]["main"]
    for key in ("sharpe", "sortino", "calmar", "max_drawdown_duration", "hit_rate",
                "profit_factor", "value_at_risk", "expected_shortfall", "turnover"):  # fmt: skip
        assert key in metrics, key


def test_report_prints_intervals_and_execution_quality(backtest):
    trade, out, _, _, _ = backtest
    html, data = out / "again.html", out / "report.json"
    result = trade("report", "sheet-bt", "--html", str(html), "--json-out", str(data))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Sharpe" in text and "Implementation shortfall" in text and "bps" in text
    assert html.exists() and f"tear sheet: {html.resolve()}" in result.output
    written = json.loads(data.read_text())
    sharpe = written["intervals"]["main"]["sharpe"]
    assert sharpe["low"] <= sharpe["value"] <= sharpe["high"]
    assert written["execution"]["main"]["fill_rate"] > 0.9
    assert written["conventions"]["periods_per_year"] == 252


def test_the_report_measures_the_final_holdings_risk(backtest, market):
    """VaR/ES by every method (the t copula included) at 95/99% and 1/10 bars, the rolling VaR
    backtest, stress windows, shocks, sectors and the correlation check of the last holdings;
    the historical figures recomputed here from the bars and the stated weights."""
    trade, out, _, _, _ = backtest
    data = out / "risk.json"
    assert trade("report", "sheet-bt", "--json-out", str(data)).exit_code == 0
    risk = json.loads(data.read_text())["risk"]
    weights = pd.Series(risk["weights"])
    assert risk["as_of"] >= "2011-06-01" and 0 < weights.abs().sum() <= 1.05
    table = {(r["method"], r["level"], r["horizon"]): r for r in risk["var_es"]}
    methods = ("historical", "parametric", "monte-carlo", "evt", "copula")
    assert set(table) == {(m, lv, h) for m in methods for lv in (0.95, 0.99)
                          for h in (1, 10)}  # fmt: skip
    for row in table.values():
        assert 0 < row["var"] <= row["es"], row
        assert row["var"] < table[(row["method"], 0.99, row["horizon"])]["var"] + 1e-12
    bars = read_bars(market, list(weights.index)).to_pandas()
    closes = bars.pivot(index="ts", columns="symbol", values="close")
    closes = closes[closes.index <= pd.Timestamp(risk["as_of"])]
    history = closes.pct_change(fill_method=None).iloc[1:].fillna(0.0)
    for level, horizon in ((0.95, 1), (0.99, 10)):
        expected = portfolio_var_es(history[weights.index], weights, level, horizon)
        got = table[("historical", level, horizon)]
        assert got["var"] == pytest.approx(expected.var, abs=1e-12)
        assert got["es"] == pytest.approx(expected.es, abs=1e-12)
    backtest = risk["var_backtest"]
    assert backtest["bars"] == 250 and len(backtest["rows"]) == 16  # 8 methods at 99% and 95%
    for row in backtest["rows"]:
        assert row["observations"] == 250 and 0 <= row["kupiec_p"] <= 1, row
    worst = [w["pnl"] for w in risk["stress"]]
    assert len(worst) == 5 and worst == sorted(worst) and worst[0] < 0
    assert risk["shocks"] == [{"shock": "all", "move": -0.1,
                               "pnl": pytest.approx(-0.1 * weights.sum())}]  # fmt: skip
    assert sum(v["net"] for v in risk["sectors"].values()) == pytest.approx(weights.sum())
    assert "mean pairwise correlation" in risk["correlation"]["message"]


def test_report_refuses_an_unknown_stream_or_an_unwritable_path(backtest):
    trade, out, _, _, _ = backtest
    unknown = trade("report", "no-such-stream")
    assert unknown.exit_code == 2 and "no stream 'no-such-stream'" in unknown.output
    blocker = out / "a-file"
    blocker.write_text("")
    bad = trade("report", "sheet-bt", "--html", str(blocker / "sheet.html"))
    assert bad.exit_code == 2 and "cannot write the tear sheet" in bad.output


def test_the_page_renders_every_chart_without_errors_in_chromium(backtest):
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); required when CI is set")
    from playwright.sync_api import sync_playwright

    html = backtest[2]
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=LAUNCH_ARGS)  # fmt: skip
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html.as_uri())
            page.wait_for_function(
                "() => { const d = [...document.querySelectorAll('.plotly-graph-div')];"
                " return d.length > 0 && d.every(c => c.querySelector('svg.main-svg')); }",
                timeout=20_000,
            )
            charts = page.locator(".plotly-graph-div").count()
            traces = page.evaluate(
                "() => [...document.querySelectorAll('.plotly-graph-div')].map(d => d.data.length)"
            )
            rows = page.locator("#metrics tr").count()
        finally:
            browser.close()
    assert charts == CHARTS
    assert all(n > 0 for n in traces), traces
    assert rows > 10
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []  # self-contained
