"""The ensemble's weights over time: for every out-of-sample bar, the weights its combiner used
there (per horizon, volatility regime and member), as one long table. An ensemble run logs it to
MLflow (``ensemble_weight_series.csv``, and the first horizon's weights as metrics stepped by
bar) and stores it in ``mlops.ensemble_weights``, from where :func:`load_series` reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from training.adaptive import REGIMES
from warehouse.db import connect

COLUMNS = ("ts", "horizon", "regime", "member", "weight")
_BATCH = 1000  # MLflow takes at most 1000 metrics per call


def weight_series(
    ts: np.ndarray,
    weights: np.ndarray,
    members: Sequence[str],
    horizons: Sequence[int],
    regimes: Sequence[str],
) -> pd.DataFrame:
    """``weights`` (bars, 3, horizons, members), in :data:`REGIMES` order, at bars ``ts``, as
    rows of :data:`COLUMNS`, keeping only ``regimes`` (those the combiner tells apart)."""
    keep = [REGIMES.index(r) for r in regimes]
    chosen = weights[:, keep]  # (bars, regimes, horizons, members)
    shape = chosen.shape
    index = np.indices(shape).reshape(len(shape), -1)
    return pd.DataFrame(
        {
            "ts": np.asarray(ts, dtype="datetime64[us]")[index[0]],
            "horizon": np.asarray(horizons)[index[2]],
            "regime": np.asarray(regimes)[index[1]],
            "member": np.asarray(members)[index[3]],
            "weight": chosen.reshape(-1).astype(float),
        }
    )


def log_series(run_id: str, series: pd.DataFrame) -> None:
    """Into run ``run_id``: the whole series as ``ensemble_weight_series.csv``, and the first
    horizon's as metrics ``weight_h<h>_<regime>_<member>`` (step: the bar's number from the
    first out-of-sample bar; timestamp: the bar's time), which MLflow charts."""
    client = MlflowClient()
    client.log_text(run_id, series.to_csv(index=False), "ensemble_weight_series.csv")
    first = series[series["horizon"] == series["horizon"].min()]
    bars = np.unique(first["ts"].to_numpy())
    steps = np.searchsorted(bars, first["ts"].to_numpy())
    millis = first["ts"].to_numpy().astype("datetime64[ms]").astype(np.int64)
    metrics = [
        Metric(f"weight_h{h}_{regime}_{member}", float(w), int(ms), int(step))
        for h, regime, member, w, ms, step in zip(
            first["horizon"], first["regime"], first["member"], first["weight"], millis, steps,
            strict=True,
        )
    ]  # fmt: skip
    for start in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + _BATCH])


def save_series(
    url: str, model: str, version: str, run_id: str, combiner: str, series: pd.DataFrame
) -> int:
    """Store the series of registered ``model`` ``version`` in ``mlops.ensemble_weights``
    (replacing an earlier one of the same run); returns the rows written."""
    ts = pd.to_datetime(series["ts"]).dt.tz_localize("UTC")
    rows = zip(ts, series["horizon"], series["regime"], series["member"], series["weight"],
               strict=True)  # fmt: skip
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("delete from mlops.ensemble_weights where run_id = %s", (run_id,))
        with cur.copy(
            "copy mlops.ensemble_weights (run_id, model, version, combiner, ts, horizon, regime,"
            " member, weight) from stdin"
        ) as copy:
            for t, h, regime, member, weight in rows:
                copy.write_row((run_id, model, str(version), combiner, t.to_pydatetime(),
                                int(h), regime, member, float(weight)))  # fmt: skip
    return len(series)


def load_series(url: str, model: str = "qtis-ensemble", version: str | None = None) -> pd.DataFrame:
    """The stored series of ``model`` ``version`` (default: the latest version stored), with its
    ``version`` and ``combiner``, by bar; empty when none is stored."""
    with connect(url) as conn, conn.cursor() as cur:
        if version is None:
            cur.execute(
                "select max(version::int) from mlops.ensemble_weights where model = %s"
                " and version ~ '^[0-9]+$'",
                (model,),
            )
            latest = cur.fetchone()[0]
            version = None if latest is None else str(latest)
        cur.execute(
            "select version, combiner, ts, horizon, regime, member, weight"
            " from mlops.ensemble_weights where model = %s and version = %s"
            " order by ts, horizon, regime, member",
            (model, version),
        )
        names = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=names)
