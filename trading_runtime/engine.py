"""The engine loop, one bar at a time: fills of the resting orders -> online features -> signals
(rules or the served model) -> target positions -> pre-trade risk -> orders. Every event of a
bar is appended to the journal in one transaction before any order is sent, and the book
(positions, cash, risk state) is only ever changed by applying those events.

A restart rebuilds the book from the journal (the latest snapshot and the events after it),
replays the bars before the resume point through the features and signals without trading, and
re-sends the orders the journal says were decided but not acknowledged - which the venue
recognises by their deterministic client order ids. The bar that was in flight is decided again,
identically, and its events (keyed) are written once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from serving.predictor import Predicting
from trading_runtime import events as ev
from trading_runtime.aims import Aims
from trading_runtime.book import Account, Book, TradingState, rebuild
from trading_runtime.broker import CrossSection, SimulatedBroker
from trading_runtime.commands import command_events
from trading_runtime.config import RunConfig
from trading_runtime.domain import Order, Side
from trading_runtime.drawdown import drawdown_change
from trading_runtime.execution import Execution, Reporting
from trading_runtime.feed import BarSource
from trading_runtime.fx import FxRates
from trading_runtime.history import ReturnWindow
from trading_runtime.instruments import Instrument
from trading_runtime.journal import Journal, JournalError
from trading_runtime.options import OptionDesk
from trading_runtime.portfolio.sizer import rebalance_events
from trading_runtime.reconcile import Reconciler
from trading_runtime.risk import RiskEngine
from trading_runtime.routing import EngineHooks, Router
from trading_runtime.schedules import Schedules
from trading_runtime.settings import RuntimeSettings
from trading_runtime.sizing import daily_vol, holdings, order_size
from trading_runtime.stops import Stops, working_stops
from trading_runtime.strategies import Slot, StrategyContext, build_slot
from trading_runtime.telemetry import EventObserver


class EngineHalted(RuntimeError):
    """Trading stopped because the journal could not be written; nothing unjournaled was sent."""


class Engine:
    """The loop and the journal. Strategies (``strategies``), execution schedules
    (``schedules``), stops (``stops``) and venue routing (``routing``) are parts it composes.
    ``model_batch``: the most windows one model request carries (QTIS_SERVE_MAX_WINDOWS)."""

    def __init__(
        self,
        config: RunConfig,
        feed: BarSource,
        instruments: dict[str, Instrument],
        journal: Journal,
        *,
        predictor: Predicting | None = None,
        features=None,  # transforms.online.OnlineFeatureEngine over feed.symbols, if needed
        settings: RuntimeSettings,
        model_batch: int,
        venue_log: Path | None = None,
        execution: Execution | None = None,
        observers: Sequence[EventObserver] = (),
        cancel_on_stop: bool = True,
        reconciler: Reconciler | None = None,
    ) -> None:
        self.config, self.feed, self.journal = config, feed, journal
        self.observers = list(observers)  # metrics, alerts: they see every event
        self.cancel_on_stop = cancel_on_stop  # live: what a stop does with the open orders
        self.reconciler = reconciler  # live: the book compared with the broker's
        self.settings = settings
        self.symbols = feed.symbols
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.instruments = instruments
        self.lots = np.array([instruments[s].lot_size for s in self.symbols])
        self.fx = FxRates(settings.base_currency, instruments, self.symbols, execution is None)
        venue = partial(SimulatedBroker, config.cost_model(), instruments, self.symbols, fx=self.fx)
        broker = execution or venue(venue_log)
        # shadow strategies trade a hypothetical book: a venue of its own, same costs and bars
        shadow = {s.name for s in config.strategies if s.shadow}
        shadow_broker = venue() if shadow else None
        self.risk = RiskEngine(instruments)
        self.options = OptionDesk.of(instruments, self.symbols, settings)  # greeks, expiry
        self.risk.use_options(self.options)
        self.router = Router(broker, shadow_broker, shadow, self.risk, self._emit)
        hooks = EngineHooks(
            instruments, self.index, self._emit, self.router.submit, self.router.cancel
        )
        self.schedules = Schedules(hooks, feed)
        self.stops = Stops(hooks)
        self.live = config.mode in ("paper", "live")  # paced: commands, snapshots
        if self.live:
            feed.on_idle = self.idle  # between bars: commands, due reconciliations
        self.features = features
        self.columns = list(features.columns) if features is not None else []
        self.returns = ReturnWindow(len(self.symbols), self.settings.return_window)
        self.risk.use_returns(self.returns, self.symbols)
        context = StrategyContext(
            self.symbols, instruments, self.columns, self.returns, self.settings, predictor,
            local=config.model_url is None, model_batch=model_batch,
        )  # fmt: skip
        self.slots = [build_slot(s, context) for s in config.strategies]
        # flatten_at_end: the last bar whose orders still fill (next open, after the latency)
        self.exit_step: int | None = None
        if config.flatten_at_end:
            self.exit_step = len(feed) - 2 - config.cost_model().latency_bars
        needs = any(
            s.source.needs_features or s.needs_volatility or s.stops.active for s in self.slots
        )
        if needs and features is None:
            raise ValueError("this configuration needs online features: pass features=")
        self.book = Book()
        self._features: np.ndarray | None = None
        self._pending: list[ev.Event] = []
        self._carry: list[ev.Event] = []  # applied, journaled with the next write
        self._answers: list[ev.Event] = []  # the venue's answers: applied and journaled next
        self._polled = -float("inf")

    # --- set-up -----------------------------------------------------------------------------

    def start(self) -> None:
        """A new stream starts with its configuration; an existing one is rebuilt from it."""
        if not self.journal.exists():
            accounts = tuple(
                ev.AccountSpec(
                    s.name, self.config.capital(s, self.settings), s.resolved_limits(), s.shadow
                )
                for s in self.config.strategies
            )
            config = self.config.model_dump(mode="json")
            self._emit(ev.RunStarted(config, accounts, self.fx.base, key=ev.RUN_STARTED))
            self._carry, self._pending = self._pending, []
            return
        self.book = self.fx.check(rebuild(self.journal))
        if _stored_config(self.book.config) != self.config.model_dump(mode="json"):
            raise ValueError(
                f"stream {self.journal.stream!r} was started with another configuration;"
                " resume it without changing options, or use a new --stream"
            )
        book, router = self.book, self.router
        for venue in router.venues:
            held = [o for o in book.open.values() if router.venue(o.account) is venue]
            for event in venue.restore(held, book.submitted_step):
                self._emit(event)
        for client_id in sorted(book.cancelling):
            venue = router.venue(book.orders[client_id].account)
            confirmed = venue.cancel(client_id, "cancel requested before a restart")
            if confirmed is not None:
                self._emit(confirmed)
        self._reconcile()
        self._carry, self._pending = self._pending, []

    # --- the loop ---------------------------------------------------------------------------

    def run(self, progress: Callable[[int, int], None] | None = None) -> Book:
        self.start()
        resume_at = max(self.book.step + 1, self.feed.first_trading_step)
        pace = self.config.bars_per_second if self.live else None
        try:
            for bar in self.feed.replay(0, pace, paced_from=resume_at):
                if bar.step < resume_at:
                    self._observe(bar)
                    if self.live and bar.step == resume_at - 1:
                        self._prime(bar)
                else:
                    self._step(bar)
                if progress is not None:
                    progress(bar.step + 1, len(self.feed))
            if self.config.mode == "live":
                self._stopped()
            elif not self.book.finished:
                self._take_answers()
                self._emit(ev.RunFinished(key=ev.RUN_FINISHED))
                self.journal.write(self._pending)
                self.journal.flush()
                self._journaled()
        except JournalError as exc:
            for account in self.book.accounts.values():
                account.state, account.state_reason = TradingState.HALTED, str(exc)
            raise EngineHalted(f"HALTED: {exc}. No order was sent after the failed write.") from exc
        return self.book

    def _stopped(self) -> None:
        """A live session stops (it never finishes: a restart resumes it): the venue's last
        answers and, with ``cancel_on_stop``, a cancel of every open order are journaled, and
        the cancels sent."""
        self._take_answers()
        self.router.new_bar()
        if self.cancel_on_stop:
            for order in list(self.book.open.values()):
                if order.client_id not in self.book.cancelling:
                    self.router.cancel(order.client_id, "the live session stopped")
        self.journal.write(self._pending)
        self._journaled()
        for client_id in self.router.to_cancel:
            answer = self.router.venue(self.book.orders[client_id].account).cancel(
                client_id, "the live session stopped"
            )
            if answer is not None:
                self._answers.append(answer)
        self._take_answers()
        self.journal.write(self._pending)
        self._journaled()

    def idle(self) -> None:
        """Between bars (a live feed waiting for the next one): an operator's command and a
        due reconciliation take effect now, journaled at once, with the venue's news first
        (fills the broker reported meanwhile: the book must hold them before it is compared)."""
        now = time.perf_counter()
        commands = now - self._polled >= self.settings.command_poll_seconds
        due = self.reconciler is not None and self.reconciler.due() is not None
        if not (commands or due):
            return
        self._take_answers()
        self.router.new_bar()
        self._venue_news()
        if commands:
            self._polled = now
            self._apply_commands()
        self._reconcile()
        if self._pending:
            self.journal.write(self._pending)
            self._journaled()
        for client_id in self.router.to_cancel:
            venue = self.router.venue(self.book.orders[client_id].account)
            answer = venue.cancel(client_id, "requested")
            if answer is not None:
                self._answers.append(answer)
        self._pending, self._carry = [], []

    def record(self, event: ev.Event) -> None:
        """Journal ``event`` now, between bars (a live feed's notice: a late bar, a stale
        feed; a reconciliation): the book and the observers see it as any other event."""
        self.book.apply(event)
        for observer in self.observers:
            observer.observe(event, self.book)
        self.journal.write([event])

    def _observe(self, bar: CrossSection) -> None:
        """Advance features, signal state and the venue's volatility by one bar."""
        if self.features is not None:
            self._features = self.features.update(
                bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume
            )
        self.returns.update(bar.close)
        for slot in self.slots:
            slot.source.observe(bar, self._features)
        for venue in self.router.venues:
            venue.observe(bar)

    def _prime(self, bar: CrossSection) -> None:
        """End of history: signals asked once and thrown away, and the idle step taken, so the
        first bar traded pays for no first call (it was a paper run's slowest: 6 ms vs 2)."""
        for slot in self.slots:
            slot.source.signals(bar)
        self.idle()

    def _emit(self, event: ev.Event) -> None:
        self.book.apply(event)
        self._pending.append(event)
        for observer in self.observers:
            observer.observe(event, self.book)

    def _journaled(self) -> None:
        """Tell the venues when what they returned is committed (a batched journal commits
        when it flushes): a FIX session saves its incoming sequence number past it."""
        if self.journal.committed:
            for venue in self.router.venues:
                venue.journaled()

    def _take_answers(self) -> None:
        self._pending, self._carry = self._carry, []
        for event in self._answers:
            self._emit(event)
        self._answers = []

    def _step(self, bar: CrossSection) -> None:
        arrived = time.perf_counter()
        self._take_answers()
        self.router.new_bar()
        if self.live and arrived - self._polled >= self.settings.command_poll_seconds:
            self._polled = arrived
            self._apply_commands()
        for venue in self.router.venues:
            for event in venue.on_bar(bar):
                self._emit(event)
        self._reconcile()
        for settled in self.options.settle(self.book, bar):  # options at expiry: options.py
            self._emit(settled)
        self._observe(bar)
        featured = time.perf_counter()
        self._close_bar(bar)
        self._risk_states()
        signals = 0.0
        for slot in self.slots if bar.tradable else ():
            if self.book.accounts[slot.config.name].state != TradingState.HALTED:
                signals += self._decide(slot, bar)
        decided = time.perf_counter()
        self.journal.write(self._pending)
        committed = time.perf_counter()
        self._journaled()
        stages = {
            "features": (featured - arrived) * 1e6,
            "signals": signals * 1e6,
            "decided": (decided - arrived) * 1e6,
            "committed": (committed - arrived) * 1e6,
        }
        self._answers += self.router.send(self.book, bar, arrived, stages)
        if self.live and bar.step % self.settings.snapshot_every == 0:
            # after the orders went out, and before their answers are applied: the state
            # exactly as journaled so far
            self.journal.write([], self.book.to_state())

    def _reconcile(self) -> None:
        """A live session's book compared with the broker when one is due (at start, after a
        reconnect, every few minutes): the differences, and what the policy does about them."""
        if self.reconciler is not None:
            settle = partial(self._venue_news, read_back=True)
            for event in self.reconciler.check(self.book, settle=settle):
                self._emit(event)

    def _venue_news(self, read_back: bool = False) -> None:
        """What a reporting venue heard since it was last asked, applied to the book; with
        ``read_back``, the open orders' states are asked for now as well (a fill on its way)."""
        for venue in self.router.venues:
            if isinstance(venue, Reporting):
                for event in venue.take_updates(read_back):
                    self._emit(event)

    def _apply_commands(self) -> None:
        for command in self.journal.commands():
            if command.seq not in self.book.applied_commands:
                if command.seq not in self.book.pending_commands:
                    self.book.apply(command)  # journaled already, by the operator's CLI
                for event in command_events(self.book, command.seq, command):
                    self._emit(event)
                    if isinstance(event, ev.CancelRequested):
                        self.router.queue_cancel(event.client_id)

    def _close_bar(self, bar: CrossSection) -> None:
        book = self.book
        held = {s for a in book.accounts.values() for s in a.positions}
        held |= {o.symbol for o in book.open.values()}
        held |= self.options.underlyings(held)  # an option's greeks need its underlying's mark
        closes, index, fx = bar.close.tolist(), self.index, self.fx.marks(bar)  # floats, not numpy
        marks = {}
        for symbol in sorted(held):
            price = closes[index[symbol]] if symbol in index else np.nan
            if price == price:  # not NaN
                marks[symbol] = price
        closed = ev.BarClosed(bar.ts.isoformat(), bar.step, marks, fx=fx, key=f"bar:{bar.step}")
        self._emit(closed)
        # the equity the projection arrived at, journaled with the bar (before it is written)
        # so that `qtis trade replay` can check that the events still give it
        equity = {a.name: round(a.equity, 6) for a in book.accounts.values()}
        self._pending[-1] = replace(closed, equity=equity)  # _emit appended it last

    def _risk_states(self) -> None:
        """Drawdown protection (``trading_runtime.drawdown``); a halt cancels what works."""
        for account in self.book.accounts.values():
            change = drawdown_change(self.book, account)
            if change is None:
                continue
            self._emit(change)
            if account.state == TradingState.HALTED:
                for order in self.book.working(account.name):
                    self.router.cancel(order.client_id, "trading halted by drawdown")

    # --- decisions --------------------------------------------------------------------------

    def _decide(self, slot: Slot, bar: CrossSection) -> float:
        """Orders of one strategy for the next bar; returns the seconds its signals took."""
        if self.exit_step is not None and bar.step > self.exit_step:
            return 0.0  # flattened: an order now could not fill before the end
        started = time.perf_counter()
        strength, forecast = slot.source.signals(bar)
        took = time.perf_counter() - started
        account = self.book.accounts[slot.config.name]
        strength = self.fx.tradable(strength)  # an FX pair is a rate, not traded
        held, working = holdings(self.book, account, self.index)
        self.stops.respect_stop_outs(account, strength, bar.step)
        if not account.limits.get("allow_short"):
            strength = np.maximum(strength, 0.0)
        closing = bar.step == self.exit_step
        target = self._targets(slot, account, bar, strength, forecast, held)
        for overlay in slot.overlays:  # futures rolls, a beta hedge
            target = overlay.targets(target, bar, self.fx.in_base(bar), held + working,
                                     account.equity)  # fmt: skip
        if closing:  # flatten_at_end: every position out, so the run's P&L is its own
            target = np.zeros_like(target)
            self.schedules.end(self.book, account.name, "flattening at the end of the run")
        target = np.sign(target) * np.floor(np.abs(target) / self.lots + 1e-9) * self.lots
        self._orders(slot, account, bar, Aims(strength, forecast, target, held + working), closing)
        self.schedules.work(self.book, account.name, bar)
        if slot.stops.active and account.positions:
            atr = self._features[:, self.columns.index("atr_14")]
            self.stops.manage(self.book, slot.stops, account, bar, atr)
        return took

    def _targets(self, slot: Slot, account: Account, bar: CrossSection, strength, forecast, held):
        """Target quantity per symbol, before lot rounding: the sizer's, or the optimizer's (a
        re-solve is journaled with its weights)."""
        if slot.portfolio is None:
            vol = None
            if slot.needs_volatility:
                vol = daily_vol(self._features, self.columns, bar.close, slot.config.vol,
                                self.settings.bars_per_year)  # fmt: skip
            return slot.sizer.targets(strength, self.fx.in_base(bar), account.equity, vol)
        target, rebalance = slot.portfolio.targets(
            bar.step, strength, forecast, self.fx.in_base(bar), account.equity, held
        )
        if rebalance is not None:
            method = slot.config.portfolio.method
            for event in rebalance_events(account.name, bar.step, bar.ts, method, rebalance):
                self._emit(event)
        return target

    def _orders(
        self,
        slot: Slot,
        account: Account,
        bar: CrossSection,
        aims: Aims,
        closing: bool,
    ) -> None:
        """Orders (or schedules) towards the target from the current quantity for the symbols
        whose difference is worth trading, each journaled with its decision."""
        name, close, base = account.name, bar.close, self.fx.in_base(bar)
        target, current = aims.target, aims.current
        delta = target - current
        if slot.rebalance:
            band = self.settings.min_trade * np.abs(target)
            wanted = (target == 0) | (np.abs(delta) >= band)
        else:
            wanted = np.sign(target) != np.sign(current)
        if account.state == TradingState.REDUCING:  # only what shrinks a position is tried
            wanted &= (np.abs(target) < np.abs(current)) & (target * current >= 0)
        busy = {s.started.symbol for s in self.book.schedules.values()
                if s.started.account == name}  # fmt: skip
        candidates = np.nonzero(wanted & ~np.isnan(close) & (np.abs(delta) >= self.lots))[0]
        stamp = ev.stamp(bar.ts) if len(candidates) else ""
        for i in candidates:
            symbol = self.symbols[i]
            if symbol in busy:
                continue
            for stop in working_stops(self.book, name, symbol):  # not to outlive its position
                self.router.cancel(stop.client_id, "position exited")
            side = Side.BUY if delta[i] > 0 else Side.SELL
            client_id = f"{name}-{stamp}-{symbol}"
            instrument = self.instruments[symbol]
            quantity = order_size(instrument, account.limits, abs(delta[i]), base[i], closing)
            if quantity <= 0:
                continue
            decision = aims.decision(slot, i)
            if slot.config.algo == "market" or closing:
                tag = "roll" if symbol in slot.rolling() else "entry"
                order = Order(client_id, name, symbol, side, quantity, created=bar.ts, tag=tag)
                self.router.submit(self.book, order, float(close[i]), decision)
            else:
                self.schedules.start(name, slot.config.algo, slot.config.algo_bars, client_id,
                                     symbol, side, quantity, bar.step, decision)  # fmt: skip


def _stored_config(stored: dict | None) -> dict | None:
    """A journal's run configuration with today's defaults filled in, so a stream started
    before a new option existed still resumes; one that no longer parses stays as written."""
    try:
        return RunConfig.model_validate(stored).model_dump(mode="json")
    except ValueError:
        return stored
