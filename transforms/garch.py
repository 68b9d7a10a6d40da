"""GARCH(1,1) conditional volatility per bar, with rolling re-estimation and no look-ahead.

For each symbol the model is re-estimated every ``refit_every`` bars on the last ``window``
percent log returns (once ``min_obs`` exist); between re-estimations the last fit filters the
variance forward one bar at a time. Fits go to ``features.garch_fits`` (with the one-step
forecast made at the fit), forecasts to ``features.garch_vol``, which dbt joins into
``bar_features``. The online engine replays the same fits through :class:`GarchFilter`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context

import numpy as np
import pandas as pd
import psycopg

from transforms.settings import FeatureSettings
from transforms.spec import FeatureSpec, GarchSpec, default_spec
from warehouse.db import connect


def next_variance(omega: float, alpha: float, beta: float, mu: float, r: float, s2: float) -> float:
    """One-step GARCH(1,1) variance forecast; batch and online both call exactly this."""
    return omega + alpha * ((r - mu) * (r - mu)) + beta * s2


def annualized(s2: np.ndarray | float, bars_per_year: float) -> np.ndarray | float:
    """Percent-return variance to annualized volatility as a fraction."""
    return np.sqrt(s2) / 100 * math.sqrt(bars_per_year)


def percent_log_returns(close: np.ndarray) -> np.ndarray:
    """r_t = 100 ln(c_t / c_{t-1}); element t-1 of the result belongs to bar t."""
    return np.log(close[1:] / close[:-1]) * 100


@dataclass(frozen=True)
class Fit:
    ts: datetime
    n_obs: int
    mu: float
    omega: float
    alpha: float
    beta: float
    sigma2_next: float


def is_fit_bar(n_returns: int, spec: GarchSpec) -> bool:
    return n_returns >= spec.min_obs and (n_returns - spec.min_obs) % spec.refit_every == 0


def fit_garch(returns: np.ndarray, ts: datetime) -> Fit | None:
    """Estimate on ``returns`` (percent, oldest first); None when the optimizer did not converge."""
    # deferred: arch with scipy and matplotlib (~2 s measured) would load with transforms.build
    # on every qtis command
    from arch import arch_model

    model = arch_model(
        returns, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(disp="off", show_warning=False)
    if res.convergence_flag != 0:
        return None
    mu, omega = float(res.params["mu"]), float(res.params["omega"])
    alpha, beta = float(res.params["alpha[1]"]), float(res.params["beta[1]"])
    s2 = float(res.conditional_volatility[-1]) ** 2
    s2_next = next_variance(omega, alpha, beta, mu, float(returns[-1]), s2)
    return Fit(ts, len(returns), mu, omega, alpha, beta, s2_next)


@dataclass
class SymbolRun:
    """What one symbol's update produced."""

    fits: list[Fit] = field(default_factory=list)
    rows: list[tuple[datetime, float, float]] = field(default_factory=list)
    failed_fits: int = 0


def run_symbol(
    ts: Sequence[datetime],
    close: np.ndarray,
    spec: GarchSpec,
    bars_per_year: float,
    *,
    resume: tuple[int, float, Fit] | None = None,
) -> SymbolRun:
    """Fits and forecasts for bars after ``resume`` = (last bar index, its sigma2_next, last fit).

    Without ``resume`` the symbol is computed from its first bar.
    """
    returns = percent_log_returns(close)
    out = SymbolRun()
    start, s2, fit = (resume[0] + 1, resume[1], resume[2]) if resume else (1, math.nan, None)
    for t in range(start, len(close)):
        r = float(returns[t - 1])
        if is_fit_bar(t, spec):
            new = fit_garch(returns[max(0, t - spec.window) : t], ts[t])
            if new is None:
                out.failed_fits += 1
            else:
                fit, s2 = new, new.sigma2_next
                out.fits.append(new)
                out.rows.append((ts[t], float(annualized(s2, bars_per_year)), s2))
                continue
        if fit is None:
            continue
        s2 = next_variance(fit.omega, fit.alpha, fit.beta, fit.mu, r, s2)
        out.rows.append((ts[t], float(annualized(s2, bars_per_year)), s2))
    return out


@dataclass
class GarchReport:
    symbols: list[str] = field(default_factory=list)
    fits: int = 0
    rows_written: int = 0
    skipped_symbols: list[str] = field(default_factory=list)
    failed_fits: int = 0
    seconds: float = 0.0
    workers: int = 1  # processes that fitted them


@dataclass(frozen=True)
class SymbolTask:
    """One symbol's update: its bars and where it resumes (None: from its first bar)."""

    symbol: str
    ts: list[datetime]
    close: np.ndarray
    spec: GarchSpec
    bars_per_year: float
    resume: tuple[int, float, Fit] | None


def _fit_symbol(task: SymbolTask) -> SymbolRun:
    """run_symbol on a task: what a worker process is sent (a top-level function pickles)."""
    return run_symbol(task.ts, task.close, task.spec, task.bars_per_year, resume=task.resume)


def _fitted(
    tasks: Iterable[SymbolTask | str], workers: int
) -> Iterator[tuple[str, SymbolRun | None]]:
    """(symbol, its run) for each task in order, None for a symbol passed as its name only
    (skipped); with ``workers`` > 1 the fits run in that many processes, a few tasks ahead."""
    if workers == 1:
        for task in tasks:
            yield (task, None) if isinstance(task, str) else (task.symbol, _fit_symbol(task))
        return
    # spawn: a forked copy of a process with threads (Dagster's) and open connections can hang
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        pending: deque[tuple[str, Future | None]] = deque()
        for task in tasks:
            done = isinstance(task, str)
            pending.append((task, None) if done else (task.symbol, pool.submit(_fit_symbol, task)))
            while len(pending) > 4 * workers:
                symbol, future = pending.popleft()
                yield symbol, None if future is None else future.result()
        for symbol, future in pending:
            yield symbol, None if future is None else future.result()


def _closes(conn: psycopg.Connection, symbol: str) -> pd.DataFrame:
    rows = conn.execute(
        "select ts, close from market.bars where symbol = %s order by ts", (symbol,)
    ).fetchall()
    return pd.DataFrame(rows, columns=["ts", "close"])


def _resume_point(
    conn: psycopg.Connection, symbol: str, ts: pd.Series
) -> tuple[int, float, Fit] | None:
    last = conn.execute(
        "select ts, sigma2_next from features.garch_vol where symbol = %s order by ts desc limit 1",
        (symbol,),
    ).fetchone()
    if last is None:
        return None
    fit = conn.execute(
        "select ts, n_obs, mu, omega, alpha, beta, sigma2_next from features.garch_fits "
        "where symbol = %s and ts <= %s order by ts desc limit 1",
        (symbol, last[0]),
    ).fetchone()
    index = np.flatnonzero((ts == pd.Timestamp(last[0])).to_numpy())
    if fit is None or not len(index):
        return None
    return int(index[0]), float(last[1]), Fit(*fit)


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: list[tuple]) -> None:
    if not rows:
        return
    with conn.cursor().copy(f"copy features.{table} ({columns}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def _tasks(
    conn: psycopg.Connection,
    symbols: Sequence[str],
    spec: FeatureSpec,
    full_refresh: bool,
    progress: Callable[[str], None] | None,
) -> Iterator[SymbolTask | str]:
    """Each symbol's task, read (and its stored rows cleared where it starts over) as the
    fits need it; a symbol too short to fit is yielded as its name."""
    for symbol in symbols:
        bars = _closes(conn, symbol)
        if len(bars) - 1 < spec.garch.min_obs:
            if progress:
                progress(f"{symbol}: {len(bars)} bars, too short")
            yield symbol
            continue
        resume = None if full_refresh else _resume_point(conn, symbol, bars["ts"])
        if resume is None:  # a full refresh, or nothing usable stored: start over
            for table in ("garch_vol", "garch_fits"):
                conn.execute(f"delete from features.{table} where symbol = %s", (symbol,))
        ts, close = list(bars["ts"]), bars["close"].to_numpy(float)
        yield SymbolTask(symbol, ts, close, spec.garch, spec.bars_per_year, resume)


def update_garch(
    url: str,
    symbols: Sequence[str] | None = None,
    *,
    spec: FeatureSpec | None = None,
    full_refresh: bool = False,
    progress: Callable[[str], None] | None = None,
    settings: FeatureSettings | None = None,
) -> GarchReport:
    """Bring features.garch_fits / garch_vol up to date with market.bars (only new bars unless
    ``full_refresh``); an incremental update equals a full refresh bit for bit, and the fits
    are the same in however many worker processes ``settings`` (default: the environment's)
    asks for."""
    spec, settings = spec or default_spec(), settings or FeatureSettings()
    started = time.perf_counter()
    report = GarchReport()
    with connect(url) as conn:
        if symbols is None:
            symbols = [
                r[0] for r in conn.execute("select symbol from market.instruments order by 1")
            ]
        report.workers = settings.workers(len(symbols))
        tasks = _tasks(conn, symbols, spec, full_refresh, progress)
        for symbol, run in _fitted(tasks, report.workers):
            report.symbols.append(symbol)
            if run is None:
                report.skipped_symbols.append(symbol)
                continue
            _copy(
                conn,
                "garch_fits",
                "symbol, ts, n_obs, mu, omega, alpha, beta, sigma2_next",
                [(symbol, *vars(f).values()) for f in run.fits],
            )
            _copy(
                conn,
                "garch_vol",
                "symbol, ts, garch_vol, sigma2_next",
                [(symbol, *row) for row in run.rows],
            )
            conn.commit()
            report.fits += len(run.fits)
            report.failed_fits += run.failed_fits
            report.rows_written += len(run.rows)
            if progress:
                progress(f"{symbol}: {len(run.fits)} fits, {len(run.rows)} rows")
    report.seconds = time.perf_counter() - started
    return report


def load_fits(url: str, symbols: Sequence[str] | None = None) -> dict[str, list[Fit]]:
    """Every stored fit per symbol, oldest first (what the online engine replays)."""
    query = "select symbol, ts, n_obs, mu, omega, alpha, beta, sigma2_next from features.garch_fits"
    params: tuple = ()
    if symbols:
        query += " where symbol = any(%s)"
        params = (list(symbols),)
    fits: dict[str, list[Fit]] = {}
    with connect(url) as conn:
        for symbol, *values in conn.execute(query + " order by symbol, ts", params):
            fits.setdefault(symbol, []).append(Fit(*values))
    return fits


class GarchFilter:
    """Online GARCH(1,1) forecasts for a fixed list of symbols, O(1) per bar.

    Estimation stays in the batch asset; the filter applies each stored fit at its bar (taking
    the forecast made there) and runs the variance recursion in between, which reproduces
    ``features.garch_vol`` exactly.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        bars_per_year: float,
        fits: Mapping[str, Sequence[Fit]] | None = None,
    ) -> None:
        n = len(symbols)
        self.bars_per_year = bars_per_year
        self.mu, self.omega, self.alpha, self.beta = (np.full(n, np.nan) for _ in range(4))
        self.s2 = np.full(n, np.nan)
        self._index = {s: i for i, s in enumerate(symbols)}
        self._fits_at: dict[pd.Timestamp, list[tuple[int, Fit]]] = {}
        for symbol, rows in (fits or {}).items():
            for fit in rows:
                if symbol in self._index:
                    self.add_fit(symbol, fit)

    def add_fit(self, symbol: str, fit: Fit) -> None:
        """A new estimation from the batch side, applied when its bar arrives."""
        key = pd.Timestamp(fit.ts)
        self._fits_at.setdefault(key, []).append((self._index[symbol], fit))

    def step(self, ts: datetime, mask: np.ndarray, log_ret_pct: np.ndarray) -> np.ndarray:
        """Advance the symbols in ``mask`` by one bar; annualized volatility (NaN before a fit)."""
        live = mask & ~np.isnan(self.s2)
        dev = log_ret_pct[live] - self.mu[live]
        self.s2[live] = (
            self.omega[live] + self.alpha[live] * (dev * dev) + (self.beta[live] * self.s2[live])
        )
        for i, fit in self._fits_at.get(pd.Timestamp(ts), ()):
            if mask[i]:
                self.mu[i], self.omega[i] = fit.mu, fit.omega
                self.alpha[i], self.beta[i], self.s2[i] = fit.alpha, fit.beta, fit.sigma2_next
        out = np.full(len(mask), np.nan)
        out[mask] = annualized(self.s2[mask], self.bars_per_year)
        return out
