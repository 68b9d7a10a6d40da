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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from serving.predictor import Predicting
from trading_runtime import events as ev
from trading_runtime.book import Account, Book, TradingState
from trading_runtime.broker import CrossSection, SimulatedBroker
from trading_runtime.commands import cancel_request, command_events, risk_state
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.domain import Order, OrderStatus, OrderType, Side, TimeInForce
from trading_runtime.execution import Execution
from trading_runtime.feed import BarFeed
from trading_runtime.history import ReturnWindow
from trading_runtime.instruments import Instrument, round_price, round_quantity
from trading_runtime.journal import Journal, JournalError
from trading_runtime.portfolio.sizer import PortfolioSizer
from trading_runtime.risk import RiskEngine
from trading_runtime.settings import RuntimeSettings
from trading_runtime.signals import BuyAndHold, ModelSignals, SignalSource, SmaCross
from trading_runtime.sizing import EqualWeight, FixedQuantity, Sizer, StopPolicy, VolatilityTarget
from trading_runtime.telemetry import EventObserver


class EngineHalted(RuntimeError):
    """Trading stopped because the journal could not be written; nothing unjournaled was sent."""


@dataclass
class Slot:
    """One strategy and its sub-account."""

    config: StrategyConfig
    source: SignalSource
    sizer: Sizer | None  # None: the portfolio optimizer sizes
    stops: StopPolicy
    rebalance: bool
    portfolio: PortfolioSizer | None = None

    @property
    def needs_volatility(self) -> bool:
        return self.sizer is not None and self.sizer.needs_volatility


class Engine:
    def __init__(
        self,
        config: RunConfig,
        feed: BarFeed,
        instruments: dict[str, Instrument],
        journal: Journal,
        *,
        predictor: Predicting | None = None,
        features=None,  # transforms.online.OnlineFeatureEngine over feed.symbols, if needed
        settings: RuntimeSettings | None = None,
        venue_log: Path | None = None,
        execution: Execution | None = None,
        observers: Sequence[EventObserver] = (),
    ) -> None:
        self.config, self.feed, self.journal = config, feed, journal
        self.observers = list(observers)  # metrics, alerts: they see every event
        self.settings = settings or RuntimeSettings()
        self.symbols = feed.symbols
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.instruments = instruments
        self.lots = np.array([instruments[s].lot_size for s in self.symbols])
        self.broker = execution or SimulatedBroker(
            config.cost_model(), instruments, self.symbols, venue_log
        )
        # shadow strategies trade a hypothetical book: a venue of its own, same costs and bars
        self.shadow = {s.name for s in config.strategies if s.shadow}
        self.shadow_broker = (
            SimulatedBroker(config.cost_model(), instruments, self.symbols) if self.shadow else None
        )
        venues = (self.broker, self.shadow_broker)
        self._venues: list[Execution] = [v for v in venues if v is not None]
        self.risk = RiskEngine(instruments)
        self.live = config.mode == "paper"
        self.features = features
        self.columns = list(features.columns) if features is not None else []
        self.returns = ReturnWindow(len(self.symbols), self.settings.return_window)
        self.risk.use_returns(self.returns, self.symbols)
        self.slots = [self._slot(s, predictor) for s in config.strategies]
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
        self._to_send: list[Order] = []
        self._to_cancel: list[str] = []
        self._polled = -float("inf")

    # --- set-up -----------------------------------------------------------------------------

    def _slot(self, s: StrategyConfig, predictor: Predicting | None) -> Slot:
        n, settings = len(self.symbols), self.settings
        if s.signal == "buy-and-hold":
            source: SignalSource = BuyAndHold(n)
        elif s.signal == "sma-cross":
            source = SmaCross(n, s.fast, s.slow)
        else:
            if predictor is None:
                raise ValueError(f"strategy {s.name} trades the model: a predictor is needed")
            from serving.settings import ServingSettings

            source = ModelSignals(
                predictor,
                self.columns,
                n,
                horizon=s.horizon,
                threshold=s.threshold,
                local=self.config.model_url is None,
                batch=ServingSettings().serve_max_windows,
                role=s.model_role,
            )
        rebalance = s.rebalance if s.rebalance is not None else s.signal == "model"
        portfolio: PortfolioSizer | None = None
        sizer: Sizer | None = None
        if s.portfolio is not None:
            sectors = {sym: self.instruments[sym].sector for sym in self.symbols}
            multipliers = np.array([self.instruments[sym].multiplier for sym in self.symbols])
            portfolio = PortfolioSizer(
                s.portfolio, self.symbols, self.returns, multipliers, sectors, s.horizon
            )
            rebalance = True
        elif s.sizing == "fixed":
            sizer = FixedQuantity(s.quantity)
        elif s.sizing == "equal":
            sizer = EqualWeight(n)
        else:
            sizer = VolatilityTarget(
                n,
                s.target_vol or settings.target_vol,
                s.max_weight or settings.max_weight,
                settings.bars_per_year,
            )
        stops = StopPolicy(s.stop_atr, s.trail_atr)
        return Slot(s, source, sizer, stops, rebalance, portfolio)

    def start(self) -> None:
        """A new stream starts with its configuration; an existing one is rebuilt from it."""
        if not self.journal.exists():
            accounts = [
                {
                    "name": s.name,
                    "capital": self.config.capital(s, self.settings),
                    "limits": s.resolved_limits(),
                    "shadow": s.shadow,
                }
                for s in self.config.strategies
            ]
            payload = {"config": self.config.model_dump(mode="json"), "accounts": accounts}
            self._emit(ev.Event(ev.RUN_STARTED, payload, ev.RUN_STARTED))
            self._carry, self._pending = self._pending, []
            return
        self.book = rebuild(self.journal)
        if _stored_config(self.book.config) != self.config.model_dump(mode="json"):
            raise ValueError(
                f"stream {self.journal.stream!r} was started with another configuration;"
                " resume it without changing options, or use a new --stream"
            )
        book = self.book
        for venue in self._venues:
            held = [o for o in book.open.values() if self._venue(o.account) is venue]
            for event in venue.restore(held, book.submitted_step):
                self._emit(event)
        for client_id in sorted(book.cancelling):
            venue = self._venue(book.orders[client_id].account)
            confirmed = venue.cancel(client_id, "cancel requested before a restart")
            if confirmed is not None:
                self._emit(confirmed)
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
                else:
                    self._step(bar)
                if progress is not None:
                    progress(bar.step + 1, len(self.feed))
            if not self.book.finished:
                self._take_answers()
                self._emit(ev.Event(ev.RUN_FINISHED, {}, ev.RUN_FINISHED))
                self.journal.write(self._pending)
                self.journal.flush()
        except JournalError as exc:
            for account in self.book.accounts.values():
                account.state, account.state_reason = TradingState.HALTED, str(exc)
            raise EngineHalted(f"HALTED: {exc}. No order was sent after the failed write.") from exc
        return self.book

    def _observe(self, bar: CrossSection) -> None:
        """Advance features, signal state and the venue's volatility by one bar."""
        if self.features is not None:
            self._features = self.features.update(
                bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume
            )
        self.returns.update(bar.close)
        for slot in self.slots:
            slot.source.observe(bar, self._features)
        for venue in self._venues:
            venue.observe(bar)

    def _venue(self, account: str) -> Execution:
        """Where ``account``'s orders go: the real venue, or the shadow accounts' own."""
        return self.shadow_broker if account in self.shadow else self.broker

    def _emit(self, event: ev.Event) -> None:
        self.book.apply(event)
        self._pending.append(event)
        for observer in self.observers:
            observer.observe(event, self.book)

    def _take_answers(self) -> None:
        self._pending, self._carry = self._carry, []
        for event in self._answers:
            self._emit(event)
        self._answers = []

    def _step(self, bar: CrossSection) -> None:
        arrived = time.perf_counter()
        self._take_answers()
        self._to_send, self._to_cancel = [], []
        if self.live and arrived - self._polled >= self.settings.command_poll_seconds:
            self._polled = arrived
            self._apply_commands()
        for venue in self._venues:
            for event in venue.on_bar(bar):
                self._emit(event)
        self._observe(bar)
        featured = time.perf_counter()
        self._close_bar(bar)
        self._risk_states()
        signals = 0.0
        for slot in self.slots:
            if self.book.accounts[slot.config.name].state != TradingState.HALTED:
                signals += self._decide(slot, bar)
        decided = time.perf_counter()
        self.journal.write(self._pending)
        committed = time.perf_counter()
        stages = {
            "features": (featured - arrived) * 1e6,
            "signals": signals * 1e6,
            "decided": (decided - arrived) * 1e6,
            "committed": (committed - arrived) * 1e6,
        }
        self._send(bar, arrived, stages)
        if self.live and bar.step % self.settings.snapshot_every == 0:
            # after the orders went out, and before their answers are applied: the state
            # exactly as journaled so far
            self.journal.write([], self.book.to_state())

    def _apply_commands(self) -> None:
        for command in self.journal.commands():
            if command.seq not in self.book.applied_commands:
                if command.seq not in self.book.pending_commands:
                    self.book.apply(command)  # journaled already, by the operator's CLI
                for event in command_events(self.book, command.seq, command.payload):
                    self._emit(event)
                    if event.type == ev.CANCEL_REQUESTED:
                        self._to_cancel.append(event.payload["client_id"])

    def _close_bar(self, bar: CrossSection) -> None:
        book = self.book
        held = {s for a in book.accounts.values() for s in a.positions}
        held |= {o.symbol for o in book.open.values()}
        marks = {}
        for symbol in sorted(held):
            price = bar.close[self.index[symbol]] if symbol in self.index else np.nan
            if not np.isnan(price):
                marks[symbol] = float(price)
        payload = {"ts": bar.ts.isoformat(), "step": bar.step, "marks": marks}
        self._emit(ev.Event(ev.BAR_CLOSED, payload, f"bar:{bar.step}"))
        # the equity the projection arrived at, journaled with the bar (before it is written)
        # so that `qtis trade replay` can check that the events still give it
        payload["equity"] = {a.name: round(a.equity, 6) for a in book.accounts.values()}

    def _risk_states(self) -> None:
        """Drawdown protection: REDUCING at one drawdown, HALTED at a deeper one. An automatic
        REDUCING lifts once the drawdown is back under its level, or once the account is flat
        (the loss is taken: the peak restarts from there); a halt needs `resume`."""
        for account in self.book.accounts.values():
            if account.state == TradingState.HALTED:
                continue
            halt = account.limits.get("halt_drawdown")
            reduce = account.limits.get("reducing_drawdown")
            dd, state = account.drawdown, account.state
            if halt is not None and dd >= halt:
                new, why = TradingState.HALTED, f"reached the halt level {halt:.0%}"
            elif state == TradingState.ACTIVE and reduce is not None and dd >= reduce:
                new, why = TradingState.REDUCING, f"reached the reducing level {reduce:.0%}"
            elif state == TradingState.REDUCING and account.state_reason.startswith("drawdown"):
                if reduce is None or dd < reduce:
                    new, why = TradingState.ACTIVE, "is back under the reducing level"
                elif self._flat(account):  # de-risked: the loss is taken, trade from here
                    new, why = TradingState.ACTIVE, "taken: flat again, the peak restarts here"
                else:
                    continue
            else:
                continue
            reason = f"drawdown {dd:.1%} from the peak {account.peak:,.2f} {why}"
            key = f"{account.name}:{self.book.step}"
            reset = new == TradingState.ACTIVE and dd >= (reduce or 1.0)
            self._emit(risk_state(account.name, new, reason, "risk", key, reset))
            if new == TradingState.HALTED:
                for order in self.book.working(account.name):
                    self._cancel(order.client_id, "trading halted by drawdown")

    def _flat(self, account: Account) -> bool:
        return not self.book.working(account.name) and not any(
            p.quantity for p in account.positions.values()
        )

    def _cancel(self, client_id: str, reason: str) -> None:
        self._emit(cancel_request(client_id, reason, "engine"))
        self._to_cancel.append(client_id)

    # --- decisions --------------------------------------------------------------------------

    def _decide(self, slot: Slot, bar: CrossSection) -> float:
        """Orders of one strategy for the next bar; returns the seconds its signals took."""
        if self.exit_step is not None and bar.step > self.exit_step:
            return 0.0  # flattened: an order now could not fill before the end
        started = time.perf_counter()
        strength, forecast = slot.source.signals(bar)
        took = time.perf_counter() - started
        book, name = self.book, slot.config.name
        account = book.accounts[name]
        strength = np.asarray(strength, dtype=float).copy()
        held, working = self._holdings(account)
        self._respect_stop_outs(account, strength, bar)
        if not account.limits.get("allow_short"):
            strength = np.maximum(strength, 0.0)
        close = bar.close
        vol = self._daily_vol(bar, slot.config.vol) if slot.needs_volatility else None
        if slot.portfolio is not None:
            target = self._portfolio_targets(slot, bar, strength, forecast, held)
        else:
            target = slot.sizer.targets(strength, close, account.equity, vol)
        closing = bar.step == self.exit_step
        if closing:  # flatten_at_end: every position out, so the run's P&L is its own
            target = np.zeros_like(target)
            self._end_schedules(name, "flattening at the end of the run")
        target = np.sign(target) * np.floor(np.abs(target) / self.lots + 1e-9) * self.lots
        current = held + working
        delta = target - current
        if slot.rebalance:
            band = self.settings.min_trade * np.abs(target)
            wanted = (target == 0) | (np.abs(delta) >= band)
        else:
            wanted = np.sign(target) != np.sign(current)
        if account.state == TradingState.REDUCING:  # only what shrinks a position is tried
            wanted &= (np.abs(target) < np.abs(current)) & (target * current >= 0)
        busy = {s["symbol"] for s in book.schedules.values() if s["account"] == name}
        candidates = np.nonzero(wanted & ~np.isnan(close) & (np.abs(delta) >= self.lots))[0]
        stamp = ev.stamp(bar.ts) if len(candidates) else ""
        for i in candidates:
            symbol = self.symbols[i]
            if symbol in busy:
                continue
            for stop in self._stops(name, symbol):  # a stop must not outlive its position
                self._cancel(stop.client_id, "position exited")
            side = Side.BUY if delta[i] > 0 else Side.SELL
            client_id = f"{name}-{stamp}-{symbol}"
            quantity = self._order_size(account, symbol, abs(delta[i]), close[i], closing)
            if quantity <= 0:
                continue
            if slot.config.algo == "market" or closing:
                self._submit(
                    Order(client_id, name, symbol, side, quantity, created=bar.ts),
                    float(close[i]),
                )
            else:
                self._start_schedule(slot, client_id, symbol, side, quantity, bar)
        self._work_schedules(name, bar)
        if slot.stops.active:
            self._manage_stops(slot, account, bar)
        return took

    def _portfolio_targets(self, slot: Slot, bar: CrossSection, strength, forecast, held):
        """The optimizer's target positions; a re-solve is journaled with its weights."""
        account = self.book.accounts[slot.config.name]
        target, rebalance = slot.portfolio.targets(
            bar.step, strength, forecast, bar.close, account.equity, held
        )
        if rebalance is not None:
            payload = {"account": account.name, "step": bar.step, "ts": bar.ts.isoformat()}
            payload |= {"method": slot.config.portfolio.method, **asdict(rebalance)}
            key = f"{ev.PORTFOLIO_REBALANCED}:{account.name}:{bar.step}"
            self._emit(ev.Event(ev.PORTFOLIO_REBALANCED, payload, key))
            if rebalance.correlation_alert:
                alert = {"account": account.name, "ts": bar.ts.isoformat()}
                alert |= {"kind": "correlation_breakdown", "message": rebalance.correlation_alert}
                key = f"{ev.RISK_ALERT}:{account.name}:{bar.step}"
                self._emit(ev.Event(ev.RISK_ALERT, alert, key))
        return target

    def _order_size(
        self, account: Account, symbol: str, wanted: float, price: float, exit_all: bool = False
    ) -> float:
        """``wanted`` cut to the account's per-order quantity and notional limits, in lots: a
        target beyond them is worked towards, not refused bar after bar. A final exit is not
        cut (there is no later bar to work it on; the risk checks pass what shrinks)."""
        cap = wanted
        if exit_all:
            return float(round_quantity(self.instruments[symbol], cap))
        limit = account.limits.get("max_order_quantity")
        if limit is not None:
            cap = min(cap, limit)
        limit = account.limits.get("max_order_notional")
        instrument = self.instruments[symbol]
        if limit is not None:
            cap = min(cap, limit / (price * instrument.multiplier))
        return float(round_quantity(instrument, cap))

    def _holdings(self, account: Account) -> tuple[np.ndarray, np.ndarray]:
        held, working = np.zeros(len(self.symbols)), np.zeros(len(self.symbols))
        for symbol, position in account.positions.items():
            held[self.index[symbol]] = position.quantity
        for order in self.book.working(account.name):
            if order.tag != "stop":
                working[self.index[order.symbol]] += order.signed_remaining
        return held, working

    def _respect_stop_outs(self, account: Account, strength: np.ndarray, bar) -> None:
        """After a stop-out, stay out until the signal has turned."""
        for symbol, direction in list(account.stopped.items()):
            i = self.index[symbol]
            if strength[i] * direction <= 0:
                self._emit(
                    ev.Event(
                        ev.STOP_CLEARED,
                        {"account": account.name, "symbol": symbol},
                        f"stop_cleared:{account.name}:{symbol}:{bar.step}",
                    )
                )
            else:
                strength[i] = 0.0

    def _daily_vol(self, bar: CrossSection, source: str) -> np.ndarray:
        """Daily volatility per symbol: ATR / close, or the annualized GARCH forecast scaled
        back to a day."""
        if source == "garch":
            annual = self._features[:, self.columns.index("garch_vol")]
            return annual / np.sqrt(self.settings.bars_per_year)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._features[:, self.columns.index("atr_14")] / bar.close

    def _submit(self, order: Order, price: float) -> None:
        denial = self.risk.check(order, self.book, price)
        if denial is not None:
            payload = {"order": order.to_payload(), "check": denial.check, "reason": str(denial)}
            self._emit(ev.Event(ev.ORDER_DENIED, payload, f"denied:{order.client_id}"))
            return
        payload = {"order": order.to_payload(), "step": self.book.step, "price": price}
        self._emit(ev.Event(ev.ORDER_SUBMITTED, payload, f"submitted:{order.client_id}"))
        self._to_send.append(order)

    def _send(self, bar: CrossSection, arrived: float, stages: dict[str, float]) -> None:
        """After the commit: orders and cancels to the venue. Its answers, with the time each
        stage of this bar took, are applied and journaled with the next bar."""
        live = [o for o in self._to_send if o.account not in self.shadow]
        if live:
            answers = self.broker.submit(live, bar.step)
            sent = round((time.perf_counter() - arrived) * 1e6, 1)
            stages = {k: round(v, 1) for k, v in stages.items()}
            for event in answers:
                event.payload["tick_to_order_us"], event.payload["stages_us"] = sent, stages
            self._answers += answers
        shadow = [o for o in self._to_send if o.account in self.shadow]
        if shadow:  # after the real orders, and not timed: the hypothetical book is no venue
            self._answers += self.shadow_broker.submit(shadow, bar.step)
        for client_id in self._to_cancel:
            event = self._venue(self.book.orders[client_id].account).cancel(client_id, "requested")
            if event is not None:
                self._answers.append(event)

    # --- execution algorithms ---------------------------------------------------------------

    def _start_schedule(self, slot, parent_id, symbol, side, quantity, bar) -> None:
        lot = self.instruments[symbol].lot_size
        weights = np.full(slot.config.algo_bars, 1.0 / slot.config.algo_bars)
        if slot.config.algo == "vwap":
            weights = self._volume_profile(symbol, bar.step, slot.config.algo_bars)
        slices = split_quantity(quantity, weights, lot)
        payload = {
            "parent_id": parent_id,
            "account": slot.config.name,
            "symbol": symbol,
            "side": side.value,
            "slices": slices,
            "algo": slot.config.algo,
            "step": bar.step,
        }
        self._emit(ev.Event(ev.SCHEDULE_STARTED, payload, f"schedule:{parent_id}"))

    def _volume_profile(self, symbol: str, step: int, bars: int) -> np.ndarray:
        """Expected volume of each of the next ``bars`` bars: the same bar-of-session a day
        earlier, averaged over the last 20 sessions; daily bars have one slot (equal slices)."""
        volume = self.feed.arrays["volume"][: step + 1, self.index[symbol]]
        times = self.feed.times[: step + 1]
        per_day = max(1, int(np.unique(times.normalize(), return_counts=True)[1][-20:].max()))
        if per_day == 1:
            return np.full(bars, 1.0 / bars)
        slots = np.arange(step + 1, step + 1 + bars) % per_day
        recent = volume[-20 * per_day :]
        profile = np.array([np.nanmean(recent[k::per_day]) for k in range(per_day)])
        weights = np.nan_to_num(profile[slots], nan=1.0)
        return weights / weights.sum()

    def _end_schedules(self, account: str, reason: str) -> None:
        for parent_id, schedule in list(self.book.schedules.items()):
            if schedule["account"] == account:
                payload = {"parent_id": parent_id, "reason": reason}
                self._emit(ev.Event(ev.SCHEDULE_ENDED, payload, f"schedule_end:{parent_id}"))

    def _work_schedules(self, account: str, bar: CrossSection) -> None:
        """The next slice of every running schedule of ``account`` (one per bar)."""
        for parent_id, schedule in list(self.book.schedules.items()):
            symbol, slices = schedule["symbol"], schedule["slices"]
            if schedule["account"] != account or np.isnan(bar.close[self.index[symbol]]):
                continue
            done = schedule["done"]
            child = Order(
                f"{parent_id}-{done}",
                account,
                symbol,
                Side(schedule["side"]),
                slices[done],
                created=bar.ts,
                tag="algo",
                parent_id=parent_id,
            )
            self._submit(child, float(bar.close[self.index[symbol]]))
            if self.book.orders[child.client_id].status == OrderStatus.DENIED:
                reason = "a slice was denied"
            elif done + 1 >= len(slices):
                reason = "all slices sent"
            else:
                continue
            payload = {"parent_id": parent_id, "reason": reason}
            self._emit(ev.Event(ev.SCHEDULE_ENDED, payload, f"schedule_end:{parent_id}"))

    # --- stops ------------------------------------------------------------------------------

    def _stops(self, account: str, symbol: str) -> list[Order]:
        return [o for o in self.book.working(account, symbol) if o.tag == "stop"]

    def _manage_stops(self, slot: Slot, account: Account, bar: CrossSection) -> None:
        """A protective stop for every settled position, tightened as a trailing stop moves."""
        if not account.positions:
            return
        atr = self._features[:, self.columns.index("atr_14")]
        stamp = ev.stamp(bar.ts)
        for symbol, position in list(account.positions.items()):
            stops = self._stops(account.name, symbol)
            if position.quantity == 0:
                for stop in stops:
                    self._cancel(stop.client_id, "position closed")
                continue
            if any(o.tag != "stop" for o in self.book.working(account.name, symbol)):
                continue  # not settled: orders are still working
            i = self.index[symbol]
            direction = 1 if position.quantity > 0 else -1
            level = slot.stops.level(direction, position.avg_price, bar.close[i], atr[i])
            if level is None or level <= 0 or np.isnan(bar.close[i]):
                continue
            instrument = self.instruments[symbol]
            level = round_price(instrument, level)
            quantity = abs(position.quantity)
            if stops:
                old = stops[0]
                moved = (
                    slot.stops.trail_atr is not None
                    and slot.stops.tighter(direction, level, old.stop_price)
                    and abs(level - old.stop_price) >= instrument.tick_size
                )
                if not moved and old.remaining == quantity:
                    continue
                level = level if moved else old.stop_price
                self._cancel(old.client_id, "stop moved" if moved else "position size changed")
            side = Side.SELL if direction > 0 else Side.BUY
            stop = Order(
                f"{account.name}-{stamp}-{symbol}-stop",
                account.name,
                symbol,
                side,
                quantity,
                OrderType.STOP,
                TimeInForce.GTC,
                stop_price=level,
                reduce_only=True,
                created=bar.ts,
                tag="stop",
            )
            self._submit(stop, float(bar.close[i]))


def _stored_config(stored: dict | None) -> dict | None:
    """A journal's run configuration with today's defaults filled in, so a stream started
    before a new option existed still resumes; one that no longer parses stays as written."""
    try:
        return RunConfig.model_validate(stored).model_dump(mode="json")
    except ValueError:
        return stored


def split_quantity(quantity: float, weights: np.ndarray, lot: float) -> list[float]:
    """``quantity`` in whole lots over slices in proportion to ``weights``; the last slice
    takes the rounding remainder so the slices add up exactly."""
    lots = round(quantity / lot)
    cumulative = np.floor(np.cumsum(weights) * lots + 1e-9).astype(int)
    cumulative[-1] = lots
    counts = np.diff(np.concatenate([[0], cumulative]))
    return [float(c * lot) for c in counts if c > 0]


def rebuild(journal: Journal, from_snapshot: bool = True) -> Book:
    """The book as the journal says it is: the latest snapshot plus the events after it."""
    snapshot = journal.latest_snapshot() if from_snapshot else None
    book = Book.from_state(snapshot[1]) if snapshot else Book()
    return book.apply_all(journal.read(snapshot[0] if snapshot else 0))
