"""Holdings, weights and exposure per bar, replayed from the journal: positions move with the
fills, and are valued at the marks each ``bar_closed`` carries (the engine's own marks, so the
values plus cash add up to the equity it journaled)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from trading_runtime import events as ev

EVENTS = (ev.ORDER_FILLED, ev.OPTION_SETTLED, ev.BAR_CLOSED)


@dataclass(frozen=True)
class Holdings:
    """One account (or the total) bar by bar, indexed by the bar's time."""

    quantities: pd.DataFrame  # signed units after the bar's fills, a column per symbol
    values: pd.DataFrame  # market value at the bar's close
    equity: pd.Series
    # cash the bar's fills moved, fees included (purchases negative); none given: no fills
    flows: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def pnl(self) -> pd.DataFrame:
        """Each symbol's profit and loss per bar: its value's change plus its cash flows (a
        purchase's cash out, a sale's cash in, the fees); summed over the symbols, the
        change of equity."""
        values = self.values.reindex(columns=self.flows.columns.union(self.values.columns))
        values = values.fillna(0.0)
        flows = self.flows.reindex(columns=values.columns).fillna(0.0)
        return values.diff().fillna(values) + flows

    @property
    def weights(self) -> pd.DataFrame:
        return self.values.div(self.equity, axis=0)

    @property
    def gross_exposure(self) -> pd.Series:
        return self.values.abs().sum(axis=1) / self.equity

    @property
    def net_exposure(self) -> pd.Series:
        return self.values.sum(axis=1) / self.equity

    def summary(self) -> dict[str, float]:
        """Mean gross and net exposure and the share of bars holding anything."""
        gross = self.gross_exposure
        if gross.empty:
            return {"exposure": float("nan"), "net_exposure": float("nan"),
                    "time_in_market": float("nan")}  # fmt: skip
        return {
            "exposure": float(gross.mean()),
            "net_exposure": float(self.net_exposure.mean()),
            "time_in_market": float((gross > 0).mean()),
        }


def holdings(events: Iterable[ev.Event]) -> dict[str, Holdings]:
    """Per account, and ``total`` over all accounts, from the stream's fills and bar closes
    (other events are ignored)."""
    held: dict[str, dict[str, float]] = {}
    multiplier: dict[str, float] = {}
    marks: dict[str, float] = {}
    rates: dict[str, float] = {}  # base per 1 unit of a symbol's currency (multi-currency)
    fx: dict[str, float] = {}
    currency: dict[str, str] = {}
    times, quantities, values, equity, flows = [], [], [], [], []
    flow: dict[str, dict[str, float]] = {}  # this bar's cash flows, per account and symbol
    for event in events:
        if isinstance(event, ev.OrderFilled):
            fill = event.fill
            account = held.setdefault(fill.account, {})
            sign = 1 if fill.side == "buy" else -1
            account[fill.symbol] = account.get(fill.symbol, 0.0) + sign * fill.quantity
            paid = flow.setdefault(fill.account, {})
            paid[fill.symbol] = paid.get(fill.symbol, 0.0) + fill.cash_flow
            multiplier[fill.symbol] = fill.multiplier
            marks.setdefault(fill.symbol, fill.price)
            if fill.currency is not None:
                currency[fill.symbol] = fill.currency
                rates[fill.symbol] = fx.setdefault(fill.currency, fill.fx_rate)
        elif isinstance(event, ev.OptionSettled):  # closed at its settlement, no fee
            account = held.setdefault(event.account, {})
            account[event.symbol] = account.get(event.symbol, 0.0) - event.quantity
            paid = flow.setdefault(event.account, {})
            cash = event.quantity * event.settlement_price * multiplier.get(event.symbol, 1.0)
            paid[event.symbol] = paid.get(event.symbol, 0.0) + cash * rates.get(event.symbol, 1.0)
        elif isinstance(event, ev.BarClosed):
            marks.update(event.marks)
            if event.fx:
                fx.update(event.fx)
                rates = {s: fx[c] for s, c in currency.items() if c in fx}
            times.append(pd.Timestamp(event.ts))
            for name in event.equity:
                held.setdefault(name, {})
            quantities.append({a: dict(q) for a, q in held.items()})
            values.append(
                {a: {s: q * marks[s] * multiplier[s] * rates.get(s, 1.0) for s, q in h.items()}
                 for a, h in held.items()}
            )  # fmt: skip
            equity.append(dict(event.equity))
            flows.append(flow)
            flow = {}
    index = pd.DatetimeIndex(times, name="ts")
    equities = pd.DataFrame(equity, index=index)
    out = {}
    for name in equities.columns:
        out[name] = Holdings(
            _frame([row.get(name, {}) for row in quantities], index),
            _frame([row.get(name, {}) for row in values], index),
            equities[name],
            _frame([row.get(name, {}) for row in flows], index),
        )
    if out:
        out["total"] = Holdings(
            _total([h.quantities for h in out.values()]),
            _total([h.values for h in out.values()]),
            equities.sum(axis=1),
            _total([h.flows for h in out.values()]),
        )
    return out


def _frame(rows: list[dict[str, float]], index: pd.DatetimeIndex) -> pd.DataFrame:
    frame = pd.DataFrame(rows, index=index, dtype=float).fillna(0.0)
    return frame.reindex(columns=sorted(frame.columns))


def _total(frames: list[pd.DataFrame]) -> pd.DataFrame:
    total = pd.concat(frames, axis=1).T.groupby(level=0).sum().T
    return total.reindex(columns=sorted(total.columns))
