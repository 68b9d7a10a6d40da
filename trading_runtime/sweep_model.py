"""The served model's forecasts over a sweep's bars, made once: a threshold only decides which
forecasts are acted on, so every cell of a threshold grid trades the same forecasts.

The bars are replayed through the online features and the engine's own ``ModelSignals`` (the
same predictor, windows, batches and volatility scaling as ``qtis trade backtest --signal
model``), asked at threshold 0 on every traded bar: its forecast, and its strength (the forecast
over the symbol's volatility over the horizon, clipped to [-1, 1]; 0 where there is none). The
kernel zeroes the strength where the forecast is below a cell's threshold, as ``ModelSignals``
does. The model trades only bars after the ones its training saw (``runs.out_of_sample``), unless
``in_sample`` is set as for a backtest.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from serving.predictor import Predicting
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.feed import BarFeed
from trading_runtime.instruments import Instrument
from trading_runtime.runs import latest_trained, out_of_sample
from trading_runtime.signals import ModelSignals
from trading_runtime.sweep import Market
from transforms.online import OnlineFeatureEngine


def model_span(
    predictor: Predicting, start: date | None, end: date | None, horizon: int, in_sample: bool
) -> tuple[date | None, date | None]:
    """The traded span the engine would give the champion: from the day after the last bar its
    training (labels included) saw when no start is given; an earlier start is refused unless
    ``in_sample``."""
    strategy = StrategyConfig(signal="model", horizon=horizon)
    config = RunConfig(stream="sweep", strategies=[strategy], start=start, end=end,
                       in_sample=in_sample)  # fmt: skip
    config = out_of_sample(config, latest_trained(predictor, config))
    return config.start, config.end


def load_model_market(
    url: str,
    instruments: dict[str, Instrument],
    predictor: Predicting,
    start: date | None,
    end: date | None,
    warmup_bars: int,
    horizon: int = 1,
    batch: int = 256,
    in_sample: bool = False,
) -> Market:
    """The bars of a model-threshold sweep with the champion's forecasts and strengths
    (``Market.forecast``, ``Market.strength``) and the online ATR (for vol-target sizing)."""
    start, end = model_span(predictor, start, end, horizon, in_sample)
    feed = BarFeed.from_warehouse(url, instruments, start, end, warmup_bars)
    features = OnlineFeatureEngine.from_warehouse(url, feed.symbols, warm_up=False)
    columns = list(features.columns)
    source = ModelSignals(predictor, columns, len(feed.symbols), horizon=horizon, batch=batch)
    shape, atr_at = feed.arrays["close"].shape, columns.index("atr_14")
    atr, forecast, strength = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape)
    for t, bar in enumerate(feed.replay()):
        row = features.update(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)
        source.observe(bar, row)
        atr[t] = row[:, atr_at]
        if t >= feed.first_trading_step:
            strength[t], forecast[t] = source.signals(bar)
    market = Market.from_feed(feed, instruments, atr)
    market.forecast, market.strength = forecast, strength
    return market
