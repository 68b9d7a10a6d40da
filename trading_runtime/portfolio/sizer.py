"""A strategy's target positions from its portfolio optimizer, re-solved every
``rebalance_every`` bars on the engine's return window and held in between.

Black-Litterman's views are the model's forecasts; how much they are believed comes from how
well the same forecasts did out of sample in this run so far: the confidence is the forecasts'
out-of-sample R^2 against a zero forecast (floored, so an unskilled model leaves the prior
almost unchanged), measured once each forecast's horizon has passed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from trading_runtime import events as ev
from trading_runtime.history import ReturnWindow
from trading_runtime.portfolio.correlation import correlation_breakdown
from trading_runtime.portfolio.optimizers import PortfolioConfig, PortfolioOptimizer

MIN_CONFIDENCE, MAX_CONFIDENCE = 0.01, 0.99


@dataclass
class ForecastSkill:
    """Out-of-sample R^2 of h-bar log-return forecasts, pooled over symbols."""

    horizon: int
    min_samples: int = 20
    _made: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    _sse: float = 0.0
    _sst: float = 0.0
    samples: int = 0

    def record(self, forecast: np.ndarray, close: np.ndarray) -> None:
        """Score the forecast made ``horizon`` bars ago against what happened, keep this one."""
        self._made.append((forecast.copy(), close.copy()))
        if len(self._made) <= self.horizon:
            return
        then_forecast, then_close = self._made.pop(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            realized = np.log(close / then_close)
        ok = np.isfinite(realized) & np.isfinite(then_forecast)
        self._sse += float(((realized[ok] - then_forecast[ok]) ** 2).sum())
        self._sst += float((realized[ok] ** 2).sum())
        self.samples += int(ok.sum())

    @property
    def confidence(self) -> float:
        if self.samples < self.min_samples or self._sst == 0:
            return MIN_CONFIDENCE
        return float(np.clip(1.0 - self._sse / self._sst, MIN_CONFIDENCE, MAX_CONFIDENCE))


@dataclass(frozen=True)
class Rebalance:
    """One solve, journaled as ``portfolio_rebalanced`` for reports."""

    weights: dict[str, float]
    turnover: float
    confidence: float | None
    solve_ms: float
    correlation: float | None = None  # mean pairwise, over the recent bars
    correlation_change: float | None = None  # against the rest of the window
    correlation_alert: str | None = None  # the message, when the change passed the threshold


def rebalance_events(
    account: str, step: int, ts: datetime, method: str, rebalance: Rebalance
) -> list[ev.Event]:
    """A solve as the journal keeps it, and the correlation alert it raised, if any."""
    out: list[ev.Event] = [
        ev.PortfolioRebalanced(
            account, step, ts.isoformat(), method, **asdict(rebalance),
            key=f"{ev.PORTFOLIO_REBALANCED}:{account}:{step}",
        )
    ]  # fmt: skip
    if rebalance.correlation_alert:
        key = f"{ev.RISK_ALERT}:{account}:{step}"
        alert = ev.RiskAlert(
            account, ts.isoformat(), "correlation_breakdown", rebalance.correlation_alert, key=key
        )
        out.append(alert)
    return out


class PortfolioSizer:
    def __init__(
        self,
        config: PortfolioConfig,
        symbols: list[str],
        returns: ReturnWindow,
        multipliers: np.ndarray,
        sectors: dict[str, str | None],
        horizon: int = 1,
    ) -> None:
        self.config, self.symbols, self.returns = config, symbols, returns
        self.multipliers = multipliers
        self.optimizer = PortfolioOptimizer(config, sectors)
        self.horizon = horizon
        self.skill = ForecastSkill(horizon) if config.method == "black-litterman" else None
        self._quantities: np.ndarray | None = None

    def targets(
        self,
        step: int,
        strength: np.ndarray,
        forecast: np.ndarray | None,
        close: np.ndarray,
        equity: float,
        held: np.ndarray,
    ) -> tuple[np.ndarray, Rebalance | None]:
        """Target quantities; a Rebalance when this bar re-solved the weights."""
        if self.skill is not None and forecast is not None:
            self.skill.record(forecast, close)
        if self._quantities is not None and step % self.config.rebalance_every:
            return self._quantities, None
        started = time.perf_counter()
        window = self.returns.matrix(self.config.lookback)
        if len(window) < min(self.config.lookback, 20):
            return held, None  # not enough history to estimate risk: hold what is held
        usable = (np.isfinite(window).mean(axis=0) >= 0.9) & np.isfinite(close)
        direction = np.where(usable, np.sign(np.nan_to_num(strength)), 0.0)
        value = close * self.multipliers
        with np.errstate(invalid="ignore", divide="ignore"):
            previous = np.nan_to_num(held * value / equity)
        views, confidence = None, None
        if self.skill is not None:
            confidence = self.skill.confidence
            if forecast is not None:
                views = forecast / self.horizon  # per-bar, the window's unit
        frame = pd.DataFrame(np.nan_to_num(window), columns=self.symbols)
        self.optimizer.fit(frame, direction, views, confidence or 0.0, previous)
        weights = self.optimizer.weights_
        with np.errstate(invalid="ignore", divide="ignore"):
            self._quantities = np.nan_to_num(weights * equity / value)
        rebalance = Rebalance(
            {s: round(float(w), 8) for s, w in zip(self.symbols, weights, strict=True) if w},
            self.optimizer.turnover_,
            confidence,
            (time.perf_counter() - started) * 1e3,
            *self._correlation(window[:, usable]),
        )
        return self._quantities, rebalance

    def _correlation(self, window: np.ndarray) -> tuple[float | None, float | None, str | None]:
        """The recent bars' mean pairwise correlation against the rest of the window: a
        diversification the weights were solved for may have just gone."""
        recent = self.config.correlation_recent
        if window.shape[1] < 2 or len(window) < 2 * recent:
            return None, None, None
        alert = correlation_breakdown(
            pd.DataFrame(window), recent, len(window) - recent, self.config.correlation_threshold
        )
        return alert.recent, alert.change, alert.message if alert.alert else None
