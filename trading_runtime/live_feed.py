"""The live feed: the stored history (as :class:`~trading_runtime.feed.BarFeed` reads it), then
each new cross-section as the warehouse announces its bars (``qtis_bars``, see
:mod:`warehouse.announce`), behind the replay feed's interface.

Every feed goes through the warehouse: a vendor adapter (or anyone) loads bars, the load's
NOTIFY wakes this feed, which reads the announced range back and assembles cross-sections.

- A time is handed over when every listed symbol has its bar, or ``grace_seconds`` after its
  first bar arrived (missing symbols NaN, as the replay has them); a complete later time hands
  the earlier incomplete ones over first. Times go out in order and become steps ``len(feed)``,
  ``len(feed) + 1``, ...: the steps continue the history, so a restarted feed (whose history
  now holds these bars) gives the same step to the same bar, unless a whole time first
  arrived after a later one (that bar is late, and on a restart a step of its own).
- A bar for a time already handed over is a ``BarLate``: "late" (its symbol was missing) or
  "corrected" (other values than handed over); an out-of-session bar (the instrument's
  exchange calendar) a ``BarLate`` of kind "out_of_session". Reported through ``on_notice``
  (the engine journals them), never traded on: handed-over rows are not rewritten.
- ``CrossSection.tradable`` says whether the engine may trade on a cross-section: only the
  newest one of those handed over together, all its bars in session, and not while catching
  up. No cross-section for ``stale_seconds`` past the time the next bar is due (the calendar:
  the next session's close for daily bars, the next trading minute's end for minute bars) or
  past the last cross-section, whichever is later: ``FeedStatus("stale")``; the next batch
  handed over is the catch-up (observed, not traded), then ``FeedStatus("fresh")``. The stored
  history is never tradable: a live session trades the bars that arrive while it runs.
- ``stop`` (a ``threading.Event``) ends :meth:`LiveFeed.replay` between cross-sections.
- A lost connection is opened again (every second until the server answers), and the bars
  stored since the last time handed over are read back: nothing the warehouse holds is missed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from types import TracebackType

import numpy as np
import pandas as pd
import psycopg

from trading_runtime import events as ev
from trading_runtime.broker import CrossSection
from trading_runtime.calendar import TradingCalendar
from trading_runtime.feed import FIELDS, BarFeed
from trading_runtime.instruments import Instrument, listed
from trading_runtime.settings import LiveSettings
from warehouse.announce import BarListener
from warehouse.db import connect
from warehouse.reads import bars_query

Notice = Callable[[ev.Event], None]
POLL_SECONDS = 0.25  # the longest a wait goes without looking at the stop event
RECONNECT_SECONDS = 1.0  # between tries to reach the server again
_MICRO = timedelta(microseconds=1)


@dataclass
class _Pending:
    """The bars of one time not handed over yet: column -> OHLCV."""

    first_seen: float
    bars: dict[int, np.ndarray]


@dataclass(frozen=True)
class _Section:
    ts: datetime
    values: np.ndarray  # (fields, symbols)
    tradable: bool


def stored_history(
    url: str, instruments: dict[str, Instrument], start: date | None, warmup_bars: int
) -> BarFeed:
    """What the warehouse holds, read as the replay reads it: ``warmup_bars`` bars before
    ``start`` and every bar from it on (a new stream has none yet: its warm-up alone); none
    at all is an empty feed."""
    try:
        return BarFeed.from_warehouse(url, instruments, start, None, warmup_bars)
    except LookupError:  # nothing stored from ``start`` on: the warm-up before it, if any
        pass
    try:
        past = BarFeed.from_warehouse(url, instruments, None, start, 0)
    except LookupError:  # nothing stored at all: the live bars are all there is
        n = len(instruments)
        empty = {f: np.empty((0, n)) for f in FIELDS}
        return BarFeed(sorted(instruments), pd.DatetimeIndex([], tz=UTC), empty, 0)
    keep = slice(max(0, len(past) - warmup_bars), None)
    arrays = {f: a[keep] for f, a in past.arrays.items()}
    times = past.times[keep]
    return BarFeed(past.symbols, times, arrays, len(times))  # all of it warm-up


class LiveFeed(BarFeed):
    """History, then new cross-sections as they complete; see the module's rules. Close it
    (or use it as a context manager): it holds two connections."""

    def __init__(
        self,
        url: str,
        instruments: dict[str, Instrument],
        settings: LiveSettings,
        stop: threading.Event,
        on_notice: Notice,
        start: date | None = None,
        warmup_bars: int = 0,
    ) -> None:
        self._url = url
        self._listener: BarListener | None = BarListener(url).__enter__()  # listen, then read
        try:
            past = stored_history(url, instruments, start, warmup_bars)
            self._conn: psycopg.Connection | None = connect(url, autocommit=True)
        except BaseException:
            self._listener.__exit__(None, None, None)
            raise
        # a resumed stream's bars stored since ``start`` are steps the engine has journaled,
        # or (stored while it was down) steps it journals now: observed, never traded
        super().__init__(past.symbols, past.times, dict(past.arrays), past.first_trading_step)
        self._instruments, self._settings = instruments, settings
        self._stop, self._notice = stop, on_notice
        # called while the feed waits between bars (the engine: operators' commands and a due
        # reconciliation take effect then, not only at the next bar)
        self.on_idle: Callable[[], None] | None = None
        self._col = {s: i for i, s in enumerate(self.symbols)}
        self._steps = {ts: i for i, ts in enumerate(self._stamps)}
        self._tradable = [False] * len(self._stamps)
        self._buffers = dict(self.arrays)
        self._pending: dict[datetime, _Pending] = {}
        self._told: dict[tuple[str, datetime], np.ndarray] = {}  # late bars reported
        self._place_of = [
            (instruments[s].exchange, instruments[s].exchange_tz) for s in self.symbols
        ]
        self._places = set(self._place_of)
        for exchange, _ in self._places:  # built now (about a second each), checked now
            TradingCalendar.of(exchange)
        self._stale_at = 0.0  # monotonic: no cross-section until then is not stale
        self._stale = False

    # --- the replay interface ----------------------------------------------------------------

    def at(self, step: int) -> CrossSection:
        return replace(super().at(step), tradable=self._tradable[step])

    def replay(
        self, start: int = 0, bars_per_second: float | None = None, paced_from: int = 0
    ) -> Iterator[CrossSection]:
        """Cross-sections from ``start`` on: the stored ones at once (pacing does not apply to
        a live feed), then each new one as it completes, until ``stop`` is set."""
        queue: deque[_Section] = deque()
        step, waiting = start, False
        while not self._stop.is_set():
            if step < len(self):
                yield self.at(step)
                step += 1
            elif queue:
                self._append(queue.popleft())
            else:
                if not waiting:  # the stale alarm runs from the end of the history on
                    self._quiet(time.monotonic(), self._stamps[-1] if self._stamps else None)
                    waiting = True
                queue.extend(self._collect())

    def close(self) -> None:
        if self._listener is not None:
            self._listener.__exit__(None, None, None)
        if self._conn is not None:
            self._conn.close()
        self._listener = self._conn = None

    def __enter__(self) -> LiveFeed:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- arrivals -----------------------------------------------------------------------------

    def _collect(self) -> list[_Section]:
        """Wait (a short while) for announced loads; the cross-sections now ready, in order."""
        if self.on_idle is not None:
            self.on_idle()
        now = time.monotonic()
        if not self._stale and now >= self._stale_at:
            self._stale = True
            last = self._stamps[-1].isoformat() if self._stamps else None
            reason = f"no cross-section for {self._settings.stale_seconds:g} s past the bar due"
            self._notice(ev.FeedStatus(state="stale", reason=reason, last_bar=last))
        deadlines = [p.first_seen + self._settings.grace_seconds for p in self._pending.values()]
        if not self._stale:
            deadlines.append(self._stale_at)
        timeout = max(0.0, min([POLL_SECONDS, *(d - now for d in deadlines)]))
        try:
            listener = self._listener or self._reconnect()
            for loaded in listener.wait(timeout):
                self._read(loaded.symbols, loaded.first, loaded.last + _MICRO)
        except (psycopg.OperationalError, ConnectionError):
            self.close()  # the server went away: try again shortly; stale tells if it lasts
            self._stop.wait(RECONNECT_SECONDS)
        return self._ready(time.monotonic())

    def _reconnect(self) -> BarListener:
        """Listen again, then read what came since the last time handed over (announcements
        made while the connection was down are lost; the bars are in the warehouse)."""
        self._listener = BarListener(self._url).__enter__()
        self._conn = connect(self._url, autocommit=True)
        self._read(None, self._stamps[-1] if self._stamps else None, None)
        return self._listener

    def _read(
        self, symbols: tuple[str, ...] | None, first: datetime | None, end: datetime | None
    ) -> None:
        """Read the bars of this universe (of ``symbols``; None: all) in [first, end) back."""
        named = self.symbols if symbols is None else symbols
        wanted = [s for s in named if s in self._col]
        if not wanted or self._conn is None:
            return
        query = bars_query(wanted, first, end)
        now = time.monotonic()
        for symbol, ts, *values in self._conn.execute(query).fetchall():
            self._arrive(symbol, ts.astimezone(UTC), np.array(values, dtype=float), now)

    def _arrive(self, symbol: str, ts: datetime, values: np.ndarray, now: float) -> None:
        if not listed(self._instruments[symbol], ts.date()):
            return  # outside its listing, as the replay masks it
        col = self._col[symbol]
        step = self._steps.get(ts)
        if step is not None:
            held = np.array([self.arrays[f][step, col] for f in FIELDS])
            if not np.array_equal(held, values):
                self._late(symbol, ts, step, values, held)
        elif self._stamps and ts <= self._stamps[-1]:
            self._late(symbol, ts, None, values, None)
        else:
            self._pending.setdefault(ts, _Pending(now, {})).bars[col] = values

    def _late(
        self,
        symbol: str,
        ts: datetime,
        step: int | None,
        values: np.ndarray,
        held: np.ndarray | None,
    ) -> None:
        """Report a bar that came after its time was handed over (once per distinct values)."""
        told = self._told.get((symbol, ts))
        if told is not None and np.array_equal(told, values):
            return
        missing = held is None or bool(np.isnan(held).all())
        kind = "late" if missing and told is None else "corrected"
        self._told[(symbol, ts)] = values
        shown = dict(zip(FIELDS, values.tolist(), strict=True))
        detail = (
            f"arrived after its cross-section went out without it: {shown}"
            if kind == "late"
            else f"values changed after they were handed over: {shown}"
        )
        self._notice(
            ev.BarLate(
                key=_key(symbol, ts, kind, values),
                symbol=symbol,
                ts=ts.isoformat(),
                kind=kind,
                step=step,
                detail=detail,
            )
        )

    # --- hand-over ----------------------------------------------------------------------------

    def _complete(self, ts: datetime, pending: _Pending) -> bool:
        day = ts.date()
        wanted = (c for s, c in self._col.items() if listed(self._instruments[s], day))
        return all(c in pending.bars for c in wanted)

    def _ready(self, now: float) -> list[_Section]:
        """The pending times to hand over now: up to the last complete (or grace-expired) one."""
        times = sorted(self._pending)
        grace = self._settings.grace_seconds
        ready = [
            i
            for i, ts in enumerate(times)
            if now >= self._pending[ts].first_seen + grace or self._complete(ts, self._pending[ts])
        ]
        if not ready:
            return []
        out = times[: ready[-1] + 1]
        catching_up, self._stale = self._stale, False
        sections = []
        for i, ts in enumerate(out):
            values = np.full((len(FIELDS), len(self.symbols)), np.nan)
            for col, bar in self._pending.pop(ts).bars.items():
                values[:, col] = bar
            in_session = self._in_session(ts, len(self) + i, values)
            newest = i == len(out) - 1
            sections.append(_Section(ts, values, in_session and newest and not catching_up))
        self._quiet(now, out[-1])
        if catching_up:
            reason = f"caught up: {len(out)} cross-section(s) observed, not traded"
            self._notice(ev.FeedStatus(state="fresh", reason=reason, last_bar=out[-1].isoformat()))
        return sections

    def _quiet(self, now: float, last: datetime | None) -> None:
        """Arm the stale alarm: ``stale_seconds`` after now or after the bar following ``last``
        is due by the calendar, whichever is later (a daily feed is not stale overnight; bars
        replayed from the past are all due: the wall clock alone decides)."""
        wait = 0.0
        if last is not None:
            due = min(
                TradingCalendar.of(exchange).next_bar_close(last, self._settings.frequency, zone)
                for exchange, zone in self._places
            )
            wait = max(0.0, due.timestamp() - time.time())
        self._stale_at = now + wait + self._settings.stale_seconds

    def _in_session(self, ts: datetime, step: int, values: np.ndarray) -> bool:
        """Whether every bar of the cross-section is in its exchange's session; the others
        are reported."""
        frequency = self._settings.frequency
        open_ = {
            place: TradingCalendar.of(place[0]).in_session(ts, frequency, place[1])
            for place in self._places
        }
        present = np.flatnonzero(~np.isnan(values).all(axis=0))
        outside = [int(c) for c in present if not open_[self._place_of[c]]]
        for col in outside:
            symbol = self.symbols[col]
            self._notice(
                ev.BarLate(
                    key=_key(symbol, ts, "out_of_session", values[:, col]),
                    symbol=symbol,
                    ts=ts.isoformat(),
                    kind="out_of_session",
                    step=step,
                    detail=f"outside the {self._place_of[col][0]} session: never traded",
                )
            )
        return not outside

    def _append(self, section: _Section) -> None:
        """Grow ``times`` and ``arrays`` by one step (buffers double; ``arrays`` gets views)."""
        step = len(self._stamps)
        for i, f in enumerate(FIELDS):
            buffer = self._buffers[f]
            if step == len(buffer):
                grown = np.full((max(16, 2 * step), len(self.symbols)), np.nan)
                grown[:step] = buffer[:step]
                self._buffers[f] = buffer = grown
            buffer[step] = section.values[i]
            self.arrays[f] = buffer[: step + 1]
        self.times = self.times.append(pd.DatetimeIndex([section.ts]))
        self._stamps.append(section.ts)
        self._steps[section.ts] = step
        self._tradable.append(section.tradable)


def _key(symbol: str, ts: datetime, kind: str, values: np.ndarray) -> str:
    """The journal's exactly-once key: one record per bar, kind and values."""
    digest = hashlib.sha256(values.tobytes()).hexdigest()[:12]
    return f"{ev.BAR_LATE}:{symbol}:{ts.isoformat()}:{kind}:{digest}"
