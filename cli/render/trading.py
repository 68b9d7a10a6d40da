"""Trading as tables: a run's metrics, live vs shadow, a walk-forward, a stream's state,
orders and analysis, and what an operator's command did."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cli.common import console
from cli.render.format import num, pct, symbols_text
from trading_runtime.risk import LIMIT_OF

# (label, metric, format): what every run's table shows first
_RETURNS = (
    ("final equity", "final_equity", "{:,.2f}"),
    ("total return", "total_return", "{:.2%}"),
    ("CAGR", "cagr", "{:.2%}"),
    ("volatility", "volatility", "{:.2%}"),
    ("Sharpe", "sharpe", "{:.2f}"),
    ("max drawdown", "max_drawdown", "{:.2%}"),
    ("fees", "fees", "{:,.2f}"),
)


def print_metrics(result, elapsed: float) -> None:
    """A run's metrics after costs per sub-account, its size and speed, denials, latency."""
    metrics = dict(result.metrics)
    if len(metrics) == 2:  # one sub-account: its total is itself
        metrics.pop("total")
    table = Table("", *metrics, title=f"stream {result.stream}")
    rows = (
        *_RETURNS,
        ("slippage + spread", "slippage", "{:,.2f}"),
        ("orders (denied)", None, None),
        ("turnover / year", "turnover", "{:.2f}x"),
        ("bars", "bars", "{:,}"),
    )
    for label, key, fmt in rows:
        if key is None:
            cells = [f"{m['orders']:,} ({m['denied']:,})" for m in metrics.values()]
        else:
            cells = [fmt.format(m[key]) if m[key] == m[key] else "-" for m in metrics.values()]
        table.add_row(label, *cells)
    console.print(table)
    bars = next(iter(metrics.values()))["bars"]
    symbols = len(result.book.config.get("symbols") or []) or "all"
    console.print(f"{bars:,} bars x {symbols} symbols in {elapsed:.1f} s", highlight=False)
    if result.denials:
        console.print(denials_text(result.denials, result.denial_examples), highlight=False)
    if result.latency_us:
        lat = result.latency_us
        console.print(
            f"tick-to-order: p50 {lat['p50'] / 1e3:.2f} ms, p99 {lat['p99'] / 1e3:.2f} ms"
            f" over {lat['orders']} orders"
        )


def denials_text(denials: dict[str, int], examples: dict[str, str]) -> str:
    """Denied orders by check, most first, each with its first denial's reason (the numbers)
    and the limit that set it: why, not only how many."""
    parts = []
    for check, count in sorted(denials.items(), key=lambda kv: -kv[1]):
        part = f"{check} {count:,}"
        reason = examples.get(check, "").removeprefix(f"{check}: ")
        limit = LIMIT_OF.get(check)
        why = [f"e.g. {reason}"] if reason else []
        why += [f"QTIS_RISK_{limit.upper()}"] if limit else []
        parts.append(part + (f" ({'; '.join(why)})" if why else ""))
    return "denied by check: " + ", ".join(parts)


def print_comparison(found) -> None:
    """The live book against the shadow book, with the paired test's verdict."""
    table = Table("", f"{found.live} (live)", f"{found.shadow} (shadow)", "shadow - live",
                  title=f"live vs shadow, stream {found.stream}")  # fmt: skip
    table.add_row(
        "total return",
        *(f"{v:.2%}" for v in (found.live_total_return, found.shadow_total_return)),
        f"{found.total_return_difference:+.2%}",
    )
    table.add_row(
        "Sharpe",
        *(f"{v:.2f}" for v in (found.live_sharpe, found.shadow_sharpe)),
        f"{found.sharpe_difference:+.2f}",
    )
    console.print(table)
    console.print(
        f"paired test on {found.bars} per-bar returns (Diebold-Mariano, HAC Newey-West"
        f" {found.hac_lags} lags): statistic {found.statistic:+.2f}, p={found.p_value:.3f};"
        f" P(shadow Sharpe > live Sharpe) {found.psr:.2f}",
        highlight=False,
    )
    console.print(f"[bold]{found.verdict}[/]", highlight=False)


def print_walk_forward(found, out: Console = console) -> None:
    """One row per window (its own dates, model and results), then the stitched record next to
    buy-and-hold of the same symbols over the same traded bars."""
    s = found.settings
    table = Table(
        "window", "trained", "label end", "traded", "model", "return", "Sharpe", "max DD",
        "fills", title=f"walk-forward {found.stream}: {s['mode']}, {s['source']},"
        f" purge {s['purge']} bars",
    )  # fmt: skip
    for r in found.windows:
        w, m = r.window, (r.metrics or {}).get("total", {})
        trained = f"{w.train_start} to {w.train_end}"
        if s["source"] == "champion":  # its own training, not the plan's span
            trained = f"through {r.trained_through or '-'}"
        elif s["source"] == "rules":  # nothing trained: the bars before only warm it up
            trained = "-"
        table.add_row(
            w.name,
            trained,
            str(r.label_end or "-"),
            f"{w.test_start} to {w.test_end}",
            r.model or "-",
            pct(m.get("total_return")) if r.metrics else f"[yellow]skipped[/] {r.skipped}",
            num(m.get("sharpe")),
            pct(m.get("max_drawdown")),
            f"{r.fills:,}",
        )
    out.print(table)
    total, base = found.metrics, found.baseline["metrics"]
    summary = Table("", "walk-forward (out of sample)", "buy-and-hold", title="stitched")
    rows = (
        *_RETURNS,
        ("bars", "bars", "{:,}"),
    )
    for label, key, fmt in rows:
        cells = [m.get(key) for m in (total, base)]
        summary.add_row(label, *("-" if v is None or v != v else fmt.format(v) for v in cells))
    out.print(summary)
    out.print(
        f"{total['windows_traded']} of {len(found.windows)} windows traded,"
        f" {total['fills']:,} fills; symbols {symbols_text(found.symbols)}",
        highlight=False,
    )


def print_orders(orders, title: str) -> None:
    """Orders with their state and why they ended where they did."""
    table = Table(
        "client id", "side", "qty", "type", "status", "filled", "avg price", "why", title=title
    )
    for o in orders:
        price = o.stop_price or o.limit_price
        kind = f"{o.type.value}" + (f" @ {price}" if price else "")
        table.add_row(
            o.client_id,
            o.side.value,
            f"{o.quantity:g}",
            kind,
            o.status.value,
            f"{o.filled:g}",
            f"{o.avg_price:.4f}" if o.filled else "-",
            o.reason or "",
        )
    console.print(table)


def print_effects(effects) -> str | None:
    """What an operator's command did, event by event; stops at an applied command that reports
    an error, and returns that error."""
    for e in effects:
        if e.type == "command_applied" and e.error:
            return e.error
        if e.type == "risk_state_changed":
            console.print(f"{e.account}: {e.state} ({e.reason})")
        elif e.type == "cancel_requested":
            console.print(f"cancel {e.client_id}")
        elif e.type == "limits_changed":
            console.print(f"{e.account}: limits {e.limits}")
    return None


def print_streams(streams) -> None:
    """Journal streams: (name, events, last write) rows."""
    table = Table("stream", "events", "last write", title="runtime.events")
    for stream, count, last in streams:
        table.add_row(stream, f"{count:,}", f"{last:%Y-%m-%d %H:%M:%S}")
    console.print(table)


def print_status(stream: str, book) -> None:
    """A rebuilt book: accounts and their risk state, positions, open orders."""
    console.print(
        f"stream [bold]{stream}[/], last bar {book.last_bar}, {book.events:,} events"
        + (" (finished)" if book.finished else "")
    )
    accounts = Table(
        "account", "state", "equity", "cash", "realized", "fees", "drawdown", title="accounts"
    )
    for a in book.accounts.values():
        state = {"active": "green", "reducing": "yellow", "halted": "red"}[a.state.value]
        accounts.add_row(
            a.name,
            f"[{state}]{a.state.value}[/] {a.state_reason}",
            f"{a.equity:,.2f}",
            f"{a.cash:,.2f}",
            f"{a.realized:,.2f}",
            f"{a.fees:,.2f}",
            f"{a.drawdown:.2%}",
        )
    console.print(accounts)
    positions = Table(
        "account", "symbol", "quantity", "avg price", "mark", "unrealized", title="positions"
    )
    for a in book.accounts.values():
        for p in a.positions.values():
            if p.quantity:
                mark = book.marks.get(p.symbol, p.avg_price)
                positions.add_row(
                    a.name,
                    p.symbol,
                    f"{p.quantity:g}",
                    f"{p.avg_price:.4f}",
                    f"{mark:.4f}",
                    f"{p.unrealized(mark):,.2f}",
                )
    console.print(positions)
    print_orders(list(book.open.values()), "open orders")
    if book.pending_commands:
        console.print(f"{len(book.pending_commands)} command(s) wait for the engine to apply them")


def print_report(stream: str, analysis) -> None:
    """A stream's analysis: metrics with intervals, execution quality, portfolio risk."""
    # deferred: the tear sheet pulls arch, sklearn, scipy and matplotlib (~4 s measured) and would
    # load on every qtis command
    from trading_runtime.analytics.tearsheet import (
        asset_class_rows,
        execution_rows,
        metric_rows,
        risk_caption,
        risk_tables,
    )

    tables = [
        (f"stream {stream} (intervals: {analysis.conventions.ci_level:.0%} bootstrap)",
         metric_rows(analysis)),
        ("by asset class (P&L incl. fees, exposure of equity)", asset_class_rows(analysis)),
        ("execution quality (vs arrival: the decision bar's close)", execution_rows(analysis)),
    ]  # fmt: skip
    if analysis.risk.get("as_of"):
        tables += [t for t in risk_tables(analysis.risk).values() if t[1][1]]
    for title, (columns, rows) in tables:
        table = Table("", *columns, title=title)
        for label, cells in rows:
            table.add_row(label, *cells)
        console.print(table)
    if analysis.risk.get("as_of"):
        console.print(risk_caption(analysis.risk), analysis.risk["correlation"]["message"])
    else:
        console.print(analysis.risk.get("note", ""))
