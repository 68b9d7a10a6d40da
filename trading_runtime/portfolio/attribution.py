"""Factor attribution: how much of a strategy's return its exposure to known factors explains,
by OLS of its per-bar returns on factor returns (statsmodels), with alpha, betas, t-stats, R^2
and each factor's contribution to the summed return.

Factor sources: the five factor ETFs skfolio ships offline (MTUM, QUAL, SIZE, USMV, VLUE), or
a Fama-French file from Ken French's data library in its standard CSV layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from skfolio.datasets import load_factors_dataset


@dataclass(frozen=True)
class Attribution:
    """``contributions``: alpha x bars and beta_k x sum(factor_k); with an intercept the
    residuals sum to zero, so they add up to the summed (not compounded) excess return."""

    alpha: float
    alpha_t: float
    betas: pd.Series
    t_stats: pd.Series
    r_squared: float
    contributions: pd.Series
    total: float
    observations: int


def factor_attribution(
    returns: pd.Series, factors: pd.DataFrame, *, risk_free: str | None = None
) -> Attribution:
    """Regress ``returns`` on ``factors`` over the dates both have (dates are compared as days,
    so UTC bar timestamps meet a factor file's dates). ``risk_free``: a column of ``factors``
    subtracted from the returns and left out of the regressors (Fama-French's "RF")."""
    if not isinstance(returns, pd.Series) or not isinstance(factors, pd.DataFrame):
        raise TypeError("returns must be a pandas Series and factors a DataFrame, date-indexed")
    y, x = _by_day(returns).rename("returns"), _by_day(factors)
    data = pd.concat([y, x], axis=1, join="inner").dropna()
    if risk_free is not None:
        if risk_free not in data:
            raise ValueError(f"risk_free column {risk_free!r} is not among the factors")
        data["returns"] -= data.pop(risk_free)
    names = [c for c in data.columns if c != "returns"]
    if len(data) < len(names) + 2:
        raise ValueError(
            f"{len(data)} dates in common between the returns and the factors: need at least"
            f" {len(names) + 2} for {len(names)} factors (do their dates overlap?)"
        )
    fit = sm.OLS(data["returns"], sm.add_constant(data[names], has_constant="add")).fit()
    betas = fit.params[names]
    contributions = pd.concat(
        [pd.Series({"alpha": fit.params["const"] * len(data)}), betas * data[names].sum()]
    )
    return Attribution(
        alpha=float(fit.params["const"]),
        alpha_t=float(fit.tvalues["const"]),
        betas=betas,
        t_stats=fit.tvalues[names],
        r_squared=float(fit.rsquared),
        contributions=contributions,
        total=float(data["returns"].sum()),
        observations=len(data),
    )


def load_factor_etfs() -> pd.DataFrame:
    """Daily simple returns of skfolio's offline factor ETFs (2014-2022)."""
    return load_factors_dataset().pct_change().iloc[1:]


def load_fama_french(path: str | Path) -> pd.DataFrame:
    """A Ken French CSV (e.g. F-F_Research_Data_Factors_daily.CSV): free-text lines, a header
    row starting with a comma, then rows of YYYYMMDD (or YYYYMM) and percent values, until the
    first non-date line (monthly files continue with annual tables, which are skipped).
    Returns decimal returns indexed by date (month ends for monthly files)."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.startswith(",") and line.strip(", ")), None
    )
    if start is None:
        raise ValueError(
            f"{path}: no header row (a line like ',Mkt-RF,SMB,HML,RF'): not a Ken French CSV"
        )
    columns = [c.strip() for c in lines[start].split(",")[1:]]
    dates, rows = [], []
    for number, line in enumerate(lines[start + 1 :], start + 2):
        cells = [c.strip() for c in line.split(",")]
        if not (cells[0].isdigit() and len(cells[0]) in (6, 8)):
            break
        if len(cells) != len(columns) + 1:
            raise ValueError(
                f"{path}:{number}: {len(cells) - 1} values, the header has {len(columns)}"
            )
        try:
            rows.append([float(c) for c in cells[1:]])
        except ValueError:
            raise ValueError(f"{path}:{number}: a value is not a number: {line!r}") from None
        dates.append(cells[0])
    if not rows:
        raise ValueError(f"{path}: no YYYYMMDD or YYYYMM rows after the header at line {start + 1}")
    monthly = len(dates[0]) == 6
    index = pd.to_datetime(dates, format="%Y%m" if monthly else "%Y%m%d")
    if monthly:
        index = index + pd.offsets.MonthEnd(0)
    values = np.array(rows)
    values[values <= -99.99] = np.nan  # the library's missing-value markers (-99.99, -999)
    return pd.DataFrame(values / 100.0, index=index, columns=columns).rename_axis("date")


def _by_day(data):
    """The same data indexed by calendar day (tz dropped), so sources of dates line up."""
    index = pd.DatetimeIndex(data.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return data.set_axis(index.normalize())
