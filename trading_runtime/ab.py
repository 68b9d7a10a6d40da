"""Champion/challenger in trading: a live book against a shadow (hypothetical) book of the same
run - same bars, same costs - compared bar by bar.

The question is whether the shadow earns more than the live book, beyond luck. The two books'
per-bar returns are paired (the same bars), so the test is Diebold-Mariano on the losses
``-return``, the statistic the promotion gates use, with a HAC (Newey-West) variance: per-bar
return differences of two strategies holding similar positions are autocorrelated. Next to it,
the probabilistic Sharpe ratio of the shadow against the live book's Sharpe ratio.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from core.errors import MissingStep
from quant.conventions import PER_PERIOD, Conventions
from quant.performance import curve_returns, sharpe, total_return
from quant.significance import diebold_mariano, probabilistic_sharpe_ratio
from trading_runtime.runs import RunReport


class NoShadow(LookupError, MissingStep):
    """The stream has no shadow account (or no live one) to compare."""


@dataclass(frozen=True)
class Comparison:
    stream: str
    live: str
    shadow: str
    bars: int
    live_total_return: float
    shadow_total_return: float
    live_sharpe: float  # annualized
    shadow_sharpe: float
    mean_difference: float  # shadow - live return, per bar
    statistic: float  # Diebold-Mariano: > 0, the shadow earned more
    p_value: float  # two-sided: H0 the books earn the same
    p_shadow_better: float  # one-sided: H0 the shadow is not better
    hac_lags: int
    psr: float  # P(the shadow's true Sharpe > the live book's Sharpe)
    alpha: float

    @property
    def total_return_difference(self) -> float:
        return self.shadow_total_return - self.live_total_return

    @property
    def sharpe_difference(self) -> float:
        return self.shadow_sharpe - self.live_sharpe

    @property
    def verdict(self) -> str:
        if self.p_value >= self.alpha:
            return f"no significant difference (p={self.p_value:.2f})"
        better, worse = (self.shadow, self.live) if self.statistic > 0 else (self.live, self.shadow)
        return f"{better} better than {worse} at p={self.p_value:.2g}"

    def to_dict(self) -> dict:
        return asdict(self) | {
            "total_return_difference": self.total_return_difference,
            "sharpe_difference": self.sharpe_difference,
            "verdict": self.verdict,
        }


def newey_west_lags(n: int) -> int:
    """The usual automatic lag of a Newey-West variance, floor(4 (n / 100)^(2/9))."""
    return int(4 * (n / 100) ** (2 / 9))


def _pick(names: list[str], given: str | None, kind: str, stream: str) -> str:
    if given is not None:
        if given not in names:
            raise NoShadow(f"stream {stream!r} has no {kind} account {given!r}; it has {names}")
        return given
    if not names:
        hint = {"shadow": " (a strategy with `shadow: true`, or --challenger-shadow)"}
        raise NoShadow(f"stream {stream!r} has no {kind} account to compare{hint.get(kind, '')}")
    if len(names) > 1:
        raise NoShadow(f"stream {stream!r} has {kind} accounts {names}: name the one to compare")
    return names[0]


def compare(
    run: RunReport,
    conventions: Conventions,
    live: str | None = None,
    shadow: str | None = None,
    alpha: float = 0.05,
) -> Comparison:
    """The live account ``live`` against the shadow account ``shadow`` (each defaults to the
    stream's only one) over every bar of ``run``; the Sharpe ratios under ``conventions``
    (built by the entry point)."""
    accounts = run.book.accounts
    live = _pick([a for a in accounts if not accounts[a].shadow], live, "live", run.stream)
    shadow = _pick([a for a in accounts if accounts[a].shadow], shadow, "shadow", run.stream)
    returns = {
        name: curve_returns(accounts[name].initial, [c["equity"][name] for c in run.equity_curve])
        for name in (live, shadow)
    }
    a, b = returns[live], returns[shadow]
    lags = newey_west_lags(len(a))
    # losses are negative returns; the horizon sets the HAC lags (h - 1)
    test = diebold_mariano(-a, -b, horizon=lags + 1)
    return Comparison(
        stream=run.stream,
        live=live,
        shadow=shadow,
        bars=test.n,
        live_total_return=total_return(a),
        shadow_total_return=total_return(b),
        live_sharpe=sharpe(a, conventions),
        shadow_sharpe=sharpe(b, conventions),
        mean_difference=test.mean_loss_difference,
        statistic=test.statistic,
        p_value=min(1.0, 2 * min(test.p_value, 1 - test.p_value)),
        p_shadow_better=test.p_value,
        hac_lags=lags,
        psr=_psr(b, a),
        alpha=alpha,
    )


def _psr(shadow: np.ndarray, live: np.ndarray) -> float:
    """Probabilistic Sharpe ratio of the shadow's returns, with the live book's per-bar Sharpe
    ratio as the benchmark (NaN when either book never moved)."""
    sr, benchmark = sharpe(shadow, PER_PERIOD), sharpe(live, PER_PERIOD)
    if not (math.isfinite(sr) and math.isfinite(benchmark)):
        return math.nan
    skew, kurtosis = float(stats.skew(shadow)), float(stats.kurtosis(shadow, fisher=False))
    return probabilistic_sharpe_ratio(sr, benchmark, len(shadow), skew, kurtosis)
