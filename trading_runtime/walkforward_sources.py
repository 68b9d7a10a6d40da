"""Where a walk-forward's per-window models come from, chosen by ``WalkForwardSettings.source``:
an XGBoost fitted on each window's training bars (in process, never registered), or the champion
of each window's day. The runtime only sees the ``ModelSource`` protocol; this wires the two."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from quant.conventions import Conventions
from registry.settings import TrackingSettings
from serving.champion_source import ChampionSource
from serving.retrain_source import RetrainSource
from serving.settings import ServingSettings
from trading_runtime.config import RunConfig
from trading_runtime.settings import RuntimeSettings, WalkForwardSettings
from trading_runtime.walkforward import (
    ModelSource,
    WalkForwardResult,
    WindowResult,
    bar_timeline,
    walk_forward,
)


def model_source(
    url: str, settings: WalkForwardSettings, serving: ServingSettings, tracking: TrackingSettings
) -> Callable[[Sequence[str], int], ModelSource]:
    """A factory ``(symbols, horizon) -> ModelSource`` for ``walk_forward``; ``serving``: the
    settings its in-process predictors answer under; ``tracking``: the MLflow store the
    champions are loaded from."""
    if settings.source == "champion":
        return lambda symbols, horizon: ChampionSource(
            url, bar_timeline(url, symbols), horizon, serving, tracking
        )
    s = settings
    fit = {
        "validation": s.validation,
        "min_history": s.min_history,
        "estimators": s.xgb_estimators,
        "max_depth": s.xgb_max_depth,
        "seed": s.seed,
    }
    return lambda symbols, horizon: RetrainSource(url, symbols, horizon, serving, **fit)


def walk_forward_by_source(
    url: str,
    config: RunConfig,
    settings: WalkForwardSettings,
    runtime: RuntimeSettings,
    serving: ServingSettings,
    conventions: Conventions,
    progress: Callable[[int, int, WindowResult | None], None] | None = None,
    *,
    tracking: TrackingSettings,
) -> WalkForwardResult:
    """``walk_forward`` with its windows' models from ``settings.source`` (what the CLI and the
    demo run)."""
    source = model_source(url, settings, serving, tracking)
    return walk_forward(url, config, source, settings, runtime, conventions, progress)
