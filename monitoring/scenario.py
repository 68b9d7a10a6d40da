"""A market whose regime changes on a known bar: the bench for the monitoring loop.

Before the change each asset's returns are autocorrelated (``momentum``: a relation between the
return features and the next returns that a model can learn); from ``change`` on, volatility is
``vol_multiplier`` times higher and the autocorrelation is ``break_momentum``. A champion is
trained on the first ``train_bars`` bars only; the monitor then watches ``stable_bars`` bars of
the same regime (where every alarm is a false one) and ``after_bars`` bars of the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from registry.aliases import force
from serving.probe import serving_probe
from training.promotion import PromotionSettings
from training.runner import run_training
from training.settings import TrackingSettings
from transforms.dbt_runner import build
from transforms.garch import update_garch
from warehouse.ingest import ingest
from warehouse.providers.synthetic import SyntheticMarket
from warehouse.settings import WarehouseSettings


@dataclass(frozen=True)
class RegimeChange:
    seed: int = 0
    n_symbols: int = 6
    train_bars: int = 700
    stable_bars: int = 120
    after_bars: int = 20
    momentum: float = 0.15
    break_momentum: float = -0.15
    vol_multiplier: float = 3.0

    def market(self) -> SyntheticMarket:
        # no random calm/stressed switching and no jumps: the change is the only one
        return SyntheticMarket(
            n_symbols=self.n_symbols,
            n_bars=self.train_bars + self.stable_bars + self.after_bars,
            seed=self.seed,
            regime_persistence=1.0,
            jump_rate=0.0,
            momentum=self.momentum,
            break_at=self.train_bars + self.stable_bars,
            break_momentum=self.break_momentum,
            break_vol_multiplier=self.vol_multiplier,
        )

    @property
    def times(self) -> pd.DatetimeIndex:
        return self.market().timestamps()

    @property
    def trained_until(self) -> datetime:
        """The champion sees the bars before this one (and only the labels they decided)."""
        return self.times[self.train_bars].to_pydatetime()

    @property
    def last_trained(self) -> datetime:
        return self.times[self.train_bars - 1].to_pydatetime()

    @property
    def change(self) -> datetime:
        return self.times[self.train_bars + self.stable_bars].to_pydatetime()

    def bars_after_change(self, ts: datetime) -> int:
        """0 on the first bar of the new regime, negative before it."""
        return int(self.times.get_loc(pd.Timestamp(ts))) - (self.train_bars + self.stable_bars)

    def build(self, url: str, settings: WarehouseSettings) -> None:
        """Its bars in market.bars (judged by ``settings``), GARCH fits and a full feature
        build."""
        ingest(self.market(), url, settings)
        update_garch(url)
        report = build(url, full_refresh=True)
        if not report.success:
            failed = ", ".join(n.name for n in report.failures())
            raise RuntimeError(f"the scenario's feature build failed: {failed}")

    def train_champion(
        self, url: str, config, gates: PromotionSettings, tracking: TrackingSettings
    ) -> tuple[str, str]:
        """Train ``config`` (a ``TrainConfig`` of one family) on the first ``train_bars`` bars,
        register it (in ``tracking``'s store) and make it the champion (its gates computed under
        ``gates``); returns (name, version)."""
        run = run_training(url, config, until=self.trained_until, tracking=tracking)
        (family,) = config.models
        info = run.registered[family]
        reason = f"regime scenario seed {self.seed}: the champion before the change"
        probe = serving_probe(url, tracking=tracking)
        held = info["registered"], str(info["version"])
        force(url, *held, reason, probe, gates, tracking=tracking)
        return held
