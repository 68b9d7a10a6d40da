"""The stand-in market's state: a frame of bars published one timestamp at a time on an
accelerated clock, and the trading desk that matches orders against them.

``advance()`` moves the clock to the next timestamp: the desk first matches the working orders
against that bar (their trade updates go out), then the bars themselves are published to the
data stream's subscribers. Tests call it directly; ``start(bars_per_second)`` runs a pacing
thread for the demo. Every call holds one lock: the server's request threads, the pacing thread
and a test may all touch the market at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from trading_runtime.alpaca.desk import Desk, Misbehaviour, Reply
from trading_runtime.alpaca.wire import bar_json
from trading_runtime.broker import CrossSection
from trading_runtime.instruments import Instrument
from trading_runtime.settings import CostModel

Listener = Callable[[list[dict[str, Any]]], None]
COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")


class Market:
    def __init__(
        self,
        bars: pd.DataFrame,
        costs: CostModel | None = None,
        instruments: dict[str, Instrument] | None = None,
        cash: float = 100_000.0,
        misbehaviour: Misbehaviour | None = None,
        timeframe: str = "1Day",
    ) -> None:
        """``bars``: one row per symbol and time (columns symbol, ts, open, high, low, close,
        volume; ts tz-aware), of Alpaca's ``timeframe`` ("1Day" or "1Min": the only one
        served). Nothing is published before the first ``advance``."""
        self.timeframe = timeframe
        frame = bars.loc[:, list(COLUMNS)].copy()
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        self.frame = frame.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
        self.symbols = sorted(self.frame["symbol"].unique())
        self.times = [t.to_pydatetime() for t in sorted(self.frame["ts"].unique())]
        self._rows = {t: g for t, g in self.frame.groupby("ts")}
        instruments = instruments or {s: Instrument(s) for s in self.symbols}
        self.desk = Desk(costs or CostModel(), instruments, self.symbols, cash)
        self.desk.bad = misbehaviour or Misbehaviour()
        self.step = -1  # index of the last published time
        self.lock = threading.RLock()
        self._bar_listeners: list[Listener] = []
        self._update_listeners: list[Listener] = []
        self._drop_listeners: list[Callable[[], None]] = []
        self.updates_sent = 0  # trade update messages handed to stream connections
        self.refused = 0  # stream connections refused for their keys
        self._pacer: threading.Thread | None = None
        self._stop = threading.Event()

    # --- the clock ----------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """Market time: the last published bar's time (before the first: the first's)."""
        return self.times[max(self.step, 0)] if self.times else datetime.now(UTC)

    def advance(self) -> datetime | None:
        """Publish the next timestamp: matching first, then the bars. None when none is left."""
        with self.lock:
            if self.step + 1 >= len(self.times):
                return None
            self.step += 1
            ts = self.times[self.step]
            updates = self.desk.on_bar(self.cross_section(self.step))
            self._updates(updates)
            rows = self._rows[pd.Timestamp(ts)]
            self._emit(self._bar_listeners, [
                {"T": "b", "S": r["symbol"], **bar_json(r)} for r in rows.to_dict("records")
            ])  # fmt: skip
            return ts

    def cross_section(self, step: int) -> CrossSection:
        ts = self.times[step]
        rows = self._rows[pd.Timestamp(ts)].set_index("symbol").reindex(self.symbols)
        arrays = {c: rows[c].to_numpy(dtype=float) for c in COLUMNS[2:]}
        return CrossSection(step, ts, **arrays)

    def start(self, bars_per_second: float) -> Market:
        """Advance on a pacing thread, ``bars_per_second`` timestamps a second, until the
        bars run out or ``stop``."""
        period = 1.0 / bars_per_second

        def pace() -> None:
            while not self._stop.wait(period) and self.advance() is not None:
                pass

        self._stop.clear()
        self._pacer = threading.Thread(target=pace, name="standin-clock", daemon=True)
        self._pacer.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._pacer is not None:
            self._pacer.join()
            self._pacer = None

    # --- the data side ------------------------------------------------------------------------

    def history(self, symbols: list[str], start: datetime | None, end: datetime | None):
        """Published bars of ``symbols`` in [start, end], by symbol then time (never a bar
        the clock has not reached)."""
        with self.lock:
            if self.step < 0:
                return self.frame.iloc[0:0]
            f = self.frame
            keep = f["symbol"].isin(symbols) & (f["ts"] <= pd.Timestamp(self.times[self.step]))
            if start is not None:
                keep &= f["ts"] >= pd.Timestamp(start)
            if end is not None:
                keep &= f["ts"] <= pd.Timestamp(end)
            return f[keep].sort_values(["symbol", "ts"], kind="stable")

    # --- listeners (the server's stream connections) ----------------------------------------

    def listen(self, bars: Listener | None = None, updates: Listener | None = None,
               dropped: Callable[[], None] | None = None) -> Callable[[], None]:  # fmt: skip
        """Register a connection's callbacks; returns the function that removes them."""
        with self.lock:
            pairs = [(self._bar_listeners, bars), (self._update_listeners, updates),
                     (self._drop_listeners, dropped)]  # fmt: skip
            for group, fn in pairs:
                if fn is not None:
                    group.append(fn)

        def forget() -> None:
            with self.lock:
                for group, fn in pairs:
                    if fn in group:
                        group.remove(fn)

        return forget

    def drop_streams(self) -> None:
        """Misbehave: close every stream connection (clients must reconnect)."""
        with self.lock:
            for fn in list(self._drop_listeners):
                fn()

    def _updates(self, messages: list[dict[str, Any]]) -> None:
        self.updates_sent += len(messages) * len(self._update_listeners)
        self._emit(self._update_listeners, messages)

    def _emit(self, group: list[Listener], messages: list[dict[str, Any]]) -> None:
        if messages:
            for fn in list(group):
                fn(messages)

    # --- the trading side (REST handlers call these) ------------------------------------------

    def trade(self, action: Callable[[Desk, int, datetime], tuple[Reply, list]]) -> Reply:
        """Run a desk action under the lock and stream the updates it caused."""
        with self.lock:
            reply, updates = action(self.desk, self.step, self.now)
            self._updates(updates)
            return reply

    def misbehave(self, **changes: Any) -> None:
        """Change the misbehaviour (``Misbehaviour`` fields) from now on."""
        with self.lock:
            for name, value in changes.items():
                if not hasattr(self.desk.bad, name):
                    raise ValueError(f"unknown misbehaviour {name!r}")
                setattr(self.desk.bad, name, set(value) if name == "reject_symbols" else value)
