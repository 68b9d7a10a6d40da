"""One self-contained HTML page per run: plotly.js inlined once (the page must open on a
machine without internet), interactive charts, the metrics with their bootstrap intervals,
execution quality and the conventions they were computed under."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from quant.performance import drawdowns, monthly_returns, rolling_sharpe, rolling_volatility
from trading_runtime.analytics.analysis import Analysis

ROWS = (  # label, metric key, format (intervals, when the key has one, follow the value)
    ("Total return", "total_return", "{:.2%}"),
    ("CAGR", "cagr", "{:.2%}"),
    ("Volatility", "volatility", "{:.2%}"),
    ("Sharpe", "sharpe", "{:.2f}"),
    ("Sortino", "sortino", "{:.2f}"),
    ("Calmar", "calmar", "{:.2f}"),
    ("Max drawdown", "max_drawdown", "{:.2%}"),
    ("Max drawdown duration (bars)", "max_drawdown_duration", "{:,}"),
    ("Hit rate", "hit_rate", "{:.1%}"),
    ("Profit factor", "profit_factor", "{:.2f}"),
    ("VaR", "value_at_risk", "{:.2%}"),
    ("ES", "expected_shortfall", "{:.2%}"),
    ("Alpha", "alpha", "{:.2%}"),
    ("Beta", "beta", "{:.2f}"),
    ("Exposure (mean gross)", "exposure", "{:.1%}"),
    ("Net exposure (mean)", "net_exposure", "{:.1%}"),
    ("Time in market", "time_in_market", "{:.1%}"),
    ("Turnover / year", "turnover", "{:.2f}x"),
    ("Fees", "fees", "{:,.2f}"),
    ("Slippage + spread", "slippage", "{:,.2f}"),
    ("Orders (denied)", "orders", "{:,}"),
    ("Bars", "bars", "{:,}"),
)
EXECUTION_ROWS = (
    ("Decisions (fills)", "decisions", "{:,}"),
    ("Fill rate (quantity)", "fill_rate", "{:.1%}"),
    ("Decisions filled in full", "orders_filled", "{:.1%}"),
    ("Implementation shortfall", "implementation_shortfall_bps", "{:.1f} bps"),
    ("of which delay (arrival to reference)", "shortfall_delay_bps", "{:.1f} bps"),
    ("of which execution (reference to fill)", "shortfall_execution_bps", "{:.1f} bps"),
    ("of which fees", "shortfall_fees_bps", "{:.1f} bps"),
    ("Slippage vs reference", "slippage_bps", "{:.1f} bps"),
    ("Market impact vs bar open", "market_impact_bps", "{:.1f} bps"),
)


def write_tear_sheet(analysis: Analysis, path: Path) -> Path:
    """Write the page to ``path`` (its folder is created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tear_sheet(analysis), encoding="utf-8")
    return path


def _chart(fig: go.Figure, i: int) -> str:
    """A figure's div and its newPlot call, relying on the plotly.js in the page's head."""
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{i}",
        config={"displaylogo": False, "responsive": True},
    )
    return f'<section class="chart">{body}</section>'


def tear_sheet(analysis: Analysis) -> str:
    """The page as a string: tables first, then the charts."""
    charts = "\n".join(_chart(fig, i) for i, fig in enumerate(figures(analysis)))
    conventions = "".join(
        f"<li>{html.escape(line)}</li>" for line in analysis.conventions.describe()
    )
    title = f"QTIS tear sheet: {html.escape(analysis.stream)}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }}
th, td {{ padding: 0.25rem 0.75rem; border-bottom: 1px solid #ddd; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.conventions {{ background: #f4f6f8; border-left: 4px solid #4a78b5; padding: 0.5rem 1rem; }}
.chart {{ margin: 1rem 0; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{title}</h1>
<p>Benchmark: {html.escape(analysis.benchmark_name)}. Intervals in brackets:
{analysis.conventions.ci_level:.0%} block-bootstrap percentile intervals.</p>
<h2>Performance</h2>
{_html_table("metrics", metric_rows(analysis))}
<h2>By asset class</h2>
<p>P&amp;L (value change plus the fills' cash, fees included) and exposure (fractions of
equity) of each asset class, in the account's currency.</p>
{_html_table("asset-classes", asset_class_rows(analysis))}
<h2>Execution quality</h2>
{_html_table("execution", execution_rows(analysis))}
{risk_section(analysis.risk)}
<div class="conventions"><h3>Conventions</h3><ul>{conventions}</ul>
<p>Change them with QTIS_ANALYTICS_* environment variables (e.g. QTIS_ANALYTICS_RISK_FREE=0.02).
</p></div>
<h2>Charts</h2>
{charts}
</body></html>
"""


def _columns(table: dict[str, dict]) -> dict[str, dict]:
    """One account: its total is itself, so show it once."""
    return {k: v for k, v in table.items() if k != "total"} if len(table) == 2 else table


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return fmt.format(value)


def metric_rows(analysis: Analysis) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The performance table as text: column names, then (label, cells) rows; the intervals
    follow their value in brackets."""
    columns = _columns(analysis.metrics)
    rows = []
    for label, key, fmt in ROWS:
        cells = []
        for account, metrics in columns.items():
            text = _cell(metrics.get(key), fmt)
            if key == "orders":
                text += f" ({metrics['denied']:,})"
            interval = analysis.intervals[account].get(key)
            if interval is not None and math.isfinite(interval.low):
                text += f" [{_cell(interval.low, fmt)}, {_cell(interval.high, fmt)}]"
            cells.append(text)
        cells.append(_cell(analysis.benchmark_metrics.get(key), fmt))
        rows.append((label, cells))
    return [*columns, "benchmark"], rows


def execution_rows(analysis: Analysis) -> tuple[list[str], list[tuple[str, list[str]]]]:
    columns = _columns(analysis.execution)
    rows = []
    for label, key, fmt in EXECUTION_ROWS:
        cells = []
        for metrics in columns.values():
            text = _cell(metrics[key], fmt)
            if key == "decisions":
                text += f" ({metrics['fills']:,})"
            cells.append(text)
        rows.append((label, cells))
    return list(columns), rows


Table = tuple[list[str], list[tuple[str, list[str]]]]

ASSET_CLASS_COLUMNS = (  # label, key, format
    ("P&L", "pnl", "{:,.2f}"),
    ("contribution", "contribution", "{:.2%}"),
    ("mean gross", "gross", "{:.1%}"),
    ("max gross", "max_gross", "{:.1%}"),
    ("mean net", "net", "{:.1%}"),
)


def asset_class_rows(analysis: Analysis, account: str = "total") -> Table:
    """P&L attribution and exposure by asset class of one account (the whole book by
    default): a row per class, the symbols it traded last."""
    table = analysis.asset_classes.get(account, {})
    rows = [
        (name, [_cell(row[key], fmt) for _, key, fmt in ASSET_CLASS_COLUMNS]
         + [", ".join(row["symbols"])])
        for name, row in table.items()
    ]  # fmt: skip
    return [label for label, _, _ in ASSET_CLASS_COLUMNS] + ["symbols"], rows


GREEK_COLUMNS = (  # column, key, format
    ("delta (units)", "delta_units", "{:,.1f}"),
    ("delta", "delta", "{:,.0f}"),
    ("gamma (1%)", "gamma_1pct", "{:,.0f}"),
    ("vega (1 pt)", "vega_per_point", "{:,.0f}"),
    ("theta (day)", "theta_per_day", "{:,.0f}"),
)


def greeks_table(greeks: dict) -> tuple[str, Table]:
    """The option book's greeks per underlying and in total (currency but the units)."""
    rows = [
        (name, [_cell(row.get(key), fmt) for _, key, fmt in GREEK_COLUMNS])
        for name, row in [*greeks.get("by_underlying", {}).items(),
                          *([("total", greeks["total"])] if "total" in greeks else [])]
    ]  # fmt: skip
    title = "Option greeks of the last holdings (QuantLib, implied volatility from the closes)"
    return greeks.get("note", title), ([c for c, _, _ in GREEK_COLUMNS], rows)


def risk_tables(risk: dict) -> dict[str, tuple[str, Table]]:
    """The final holdings' risk as (title, table) by table id: VaR/ES by method, the VaR
    backtest, the stress windows, the shocks and the sectors (the numbers in
    ``Analysis.risk``)."""
    var_rows = []
    for method in dict.fromkeys(r["method"] for r in risk["var_es"]):
        for horizon in (1, 10):
            cells = [
                _cell(r[key], "{:.2%}")
                for level in (0.95, 0.99)
                for key in ("var", "es")
                for r in risk["var_es"]
                if r["method"] == method and r["horizon"] == horizon and r["level"] == level
            ]
            var_rows.append((f"{method}, {horizon} bar{'s' * (horizon > 1)}", cells))
    stress = [(r["start"][:10], [r["end"][:10], _cell(r["pnl"], "{:.2%}")]) for r in risk["stress"]]
    shocks = [
        (r["shock"], [_cell(r["move"], "{:+.0%}"), _cell(r["pnl"], "{:.2%}")])
        for r in risk["shocks"]
    ]
    sectors = [
        (name, [_cell(v[k], "{:.1%}") for k in ("long", "short", "net", "gross")])
        for name, v in risk["sectors"].items()
    ]
    return {
        "var-es": ("VaR and ES of the last holdings", (["VaR 95%", "ES 95%", "VaR 99%", "ES 99%"],
                                                        var_rows)),
        "var-backtest": backtest_table(risk.get("var_backtest", {})),
        "stress": ("Worst historical windows, replayed on these holdings", (["last bar", "P&L"],
                                                                             stress)),
        "shocks": ("Shocks (QTIS_REPORT_SHOCKS)", (["move", "P&L"], shocks)),
        "sectors": ("Exposure by sector", (["long", "short", "net", "gross"], sectors)),
        "greeks": greeks_table(risk.get("greeks", {})),
    }  # fmt: skip


BACKTEST_COLUMNS = (  # column, key, format
    ("exceptions", "exceptions", "{:,.0f}"),
    ("expected", "expected", "{:.1f}"),
    ("rate", "rate", "{:.2%}"),
    ("Kupiec p", "kupiec_p", "{:.3f}"),
    ("independence p", "independence_p", "{:.3f}"),
    ("cond. coverage p", "cc_p", "{:.3f}"),
)


def backtest_table(backtest: dict) -> tuple[str, Table]:
    """Each method's rolling 1-bar VaR on the holdings' weights, tested out of sample."""
    title = f"VaR backtest: {backtest.get('note', 'not computed')}"
    if backtest.get("rows"):
        title = (
            f"VaR backtest: 1-bar VaR over the last {backtest['bars']:,} bars, each from the"
            f" {backtest['window']} before, refitted every {backtest['refit']}; p < 0.05 rejects"
        )
    rows = [
        (f"{r['method']}, {r['level']:.0%}" + (" (not computed)" if r.get("note") else ""),
         [_cell(r.get(key), fmt) for _, key, fmt in BACKTEST_COLUMNS])
        for r in backtest.get("rows", [])
    ]  # fmt: skip
    return title, ([c for c, _, _ in BACKTEST_COLUMNS], rows)


def risk_caption(risk: dict) -> str:
    held = ", ".join(f"{s} {w:.1%}" for s, w in risk["weights"].items())
    return (
        f"Of the holdings at {risk['as_of'][:10]} ({held}), as fractions of equity, on"
        f" {risk['history']['bars']:,} bars of their returns since {risk['history']['start'][:10]};"
        " held fixed over the horizon."
    )


def risk_section(risk: dict) -> str:
    if not risk.get("as_of"):
        return f"<h2>Portfolio risk</h2><p>{html.escape(risk.get('note', 'not computed'))}</p>"
    tables = "\n".join(
        f"<h3>{html.escape(title)}</h3>\n{_html_table(table_id, table)}"
        for table_id, (title, table) in risk_tables(risk).items()
    )
    correlation = risk["correlation"]
    flag = "alert" if correlation["alert"] else "ok"
    return f"""<h2>Portfolio risk</h2>
<p>{html.escape(risk_caption(risk))}</p>
{tables}
<p id="correlation" class="{flag}">{html.escape(correlation["message"])}</p>"""


def _html_table(table_id: str, table: Table) -> str:
    columns, rows = table
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><td>{html.escape(label)}</td>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        + "</tr>"
        for label, cells in rows
    )
    return f'<table id="{table_id}"><tr><th></th>{head}</tr>{body}</table>'


def figures(analysis: Analysis) -> list[go.Figure]:
    """The charts, in page order: equity vs benchmark, drawdowns, rolling Sharpe, rolling
    volatility, monthly returns, exposure, weights, return distribution."""
    c = analysis.conventions
    returns = analysis.returns["total"]
    bench = analysis.benchmark
    initial = analysis.metrics["total"]["initial"]
    x = returns.index
    layout = {"template": "plotly_white", "height": 380, "margin": {"t": 50, "b": 40}}

    equity = go.Figure(layout={**layout, "title": "Equity vs benchmark", "yaxis_title": "equity"})
    for name in _columns(analysis.metrics):
        start = analysis.metrics[name]["initial"]
        growth = start * (1 + analysis.returns[name]).cumprod()
        equity.add_scatter(x=x, y=growth, name=name, mode="lines")
    equity.add_scatter(x=x, y=initial * (1 + bench).cumprod(), name="benchmark", mode="lines",
                       line={"dash": "dot"})  # fmt: skip

    under = go.Figure(layout={**layout, "title": "Drawdown", "yaxis_tickformat": ".0%"})
    under.add_scatter(x=x, y=drawdowns(returns), name="strategy", fill="tozeroy", mode="lines")
    under.add_scatter(x=x, y=drawdowns(bench), name="benchmark", mode="lines",
                      line={"dash": "dot"})  # fmt: skip

    window = f"{c.rolling_window}-bar"
    sharpe = go.Figure(layout={**layout, "title": f"Rolling Sharpe ({window})"})
    sharpe.add_scatter(x=x, y=rolling_sharpe(returns, c), name="strategy", mode="lines")
    sharpe.add_scatter(x=x, y=rolling_sharpe(bench, c), name="benchmark", mode="lines",
                       line={"dash": "dot"})  # fmt: skip

    vol = go.Figure(layout={**layout, "title": f"Rolling volatility ({window}, annualized)",
                            "yaxis_tickformat": ".0%"})  # fmt: skip
    vol.add_scatter(x=x, y=rolling_volatility(returns, c), name="strategy", mode="lines")
    vol.add_scatter(x=x, y=rolling_volatility(bench, c), name="benchmark", mode="lines",
                    line={"dash": "dot"})  # fmt: skip

    table = monthly_returns(returns)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    heat = go.Figure(layout={**layout, "title": "Monthly returns", "yaxis_type": "category",
                             "height": max(300, 40 + 28 * len(table))})  # fmt: skip
    heat.add_heatmap(
        z=table.to_numpy(), x=months, y=[str(y) for y in table.index], colorscale="RdYlGn",
        zmid=0, texttemplate="%{z:.1%}", hovertemplate="%{y} %{x}: %{z:.2%}<extra></extra>",
    )  # fmt: skip

    held = analysis.holdings.get("total")
    exposure = go.Figure(layout={**layout, "title": "Exposure (of equity)",
                                 "yaxis_tickformat": ".0%"})  # fmt: skip
    weights = go.Figure(layout={**layout, "title": "Weights over time",
                                "yaxis_tickformat": ".0%"})  # fmt: skip
    if held is not None:
        exposure.add_scatter(x=held.equity.index, y=held.gross_exposure, name="gross")
        exposure.add_scatter(x=held.equity.index, y=held.net_exposure, name="net",
                             line={"dash": "dot"})  # fmt: skip
        for symbol, w in held.weights.items():
            weights.add_scatter(x=w.index, y=w, name=symbol, stackgroup="weights", mode="lines")

    var, es = (
        analysis.metrics["total"]["value_at_risk"],
        analysis.metrics["total"]["expected_shortfall"],
    )
    dist = go.Figure(layout={**layout, "title": "Distribution of bar returns",
                             "xaxis_tickformat": ".1%", "bargap": 0.02})  # fmt: skip
    dist.add_histogram(x=returns, nbinsx=80, name="bar returns")
    level = f"{c.var_level:.0%}"
    lines = ((var, f"VaR {level}", "dash", "top right"), (es, f"ES {level}", "dot", "top left"))
    for value, name, dash, where in lines:
        if np.isfinite(value):
            dist.add_vline(
                x=-value,
                line_dash=dash,
                line_color="crimson",
                annotation_position=where,
                annotation_text=f"{name} {-value:.2%}",
            )
    return [equity, under, sharpe, vol, heat, exposure, weights, dist]
