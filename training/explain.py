"""SHAP attributions: which features move each horizon's forecast, and by how much.

Trees get exact TreeSHAP (``shap.TreeExplainer``). Networks get expected gradients
(``shap.GradientExplainer``) against a background of training windows, in the model's own
output units (returns, after its target scale); a window's attributions are summed over its time
steps, so every family ranks the same feature names. A cross-sectional network's forecast for
one symbol is explained by that symbol's window with the rest of its cross-section held as it
was (the other symbols' windows at that bar, or the rest of a served request). The ranking
travels with the model version (MLflow artifacts and ``mlops.feature_attributions``) so
monitoring can see attribution drift.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import shap
import torch
from mlflow.tracking import MlflowClient
from psycopg.types.json import Jsonb
from scipy.stats import spearmanr

from training.data import TrainingData, load_training_data
from training.families import FAMILIES, FINE_TUNED
from training.lineage import VersionMeta, stamp
from training.models.cross_asset import by_time
from training.models.routed import RoutedBundle
from training.models.sequence import SequenceBundle
from training.models.tabular import TreeModel
from training.settings import TrackingSettings
from training.windows import window_ends
from warehouse.db import connect


@dataclass(frozen=True)
class Attributions:
    """SHAP values of one model on a sample of bars."""

    values: np.ndarray  # (samples, features, horizons): contribution to each forecast
    inputs: np.ndarray  # (samples, features): the explained bars' raw values (last bar)
    base_values: np.ndarray  # (horizons,): the expected forecast the values add up from
    feature_names: tuple[str, ...]
    horizons: tuple[int, ...]
    method: str  # "tree" (exact TreeSHAP) or "gradient" (expected gradients)

    def importance(self) -> pd.DataFrame:
        """Mean |SHAP| per feature and horizon, their mean over horizons, and its rank (1 = the
        feature that moves the forecasts most); sorted by rank."""
        mean_abs = np.abs(self.values).mean(axis=0)  # (features, horizons)
        table = pd.DataFrame(mean_abs, columns=[f"mean_abs_h{h}" for h in self.horizons]).assign(
            mean_abs=mean_abs.mean(axis=1)
        )
        table.insert(0, "feature", list(self.feature_names))
        table["rank"] = table["mean_abs"].rank(ascending=False, method="first").astype(int)
        return table.sort_values("rank").reset_index(drop=True)

    def ranking(self) -> list[str]:
        return list(self.importance()["feature"])

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        table = self.importance()
        return {
            "method": self.method,
            "samples": int(self.values.shape[0]),
            "horizons": list(self.horizons),
            "base_values": [float(v) for v in self.base_values],
            "top": table.head(top).to_dict(orient="records"),
        }


def sample_rows(rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` of ``rows``, drawn without replacement (seeded) and kept in order."""
    if len(rows) <= n:
        return np.sort(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=n, replace=False))


def explain(
    model: Any,
    data: TrainingData,
    rows: np.ndarray,
    background: np.ndarray,
    nsamples: int = 100,
    seed: int = 7,
) -> Attributions:
    """Attributions of a fitted family model (its registered bundle) for the bars ``rows``;
    ``background`` rows are the reference the networks' expected gradients integrate from."""
    if isinstance(model, TreeModel):
        return explain_tree(model, data.features[rows], data.feature_names, data.horizons)
    if isinstance(model, SequenceBundle):
        short = [r for r in (rows, background) if (data.row_in_symbol[r] < model.window - 1).any()]
        if short:
            raise ValueError(
                f"rows to explain must end a full {model.window}-bar window of their symbol"
            )
        if not len(background):
            raise ValueError("expected gradients need at least one background window")
        offsets = np.arange(-model.window + 1, 1)
        return explain_network(
            model,
            data.features[rows[:, None] + offsets],
            data.features[background[:, None] + offsets],
            data.feature_names,
            data.horizons,
            nsamples=nsamples,
            seed=seed,
            peers=_peers(data, rows, model.window) if model.cross_sectional else None,
        )
    if isinstance(model, RoutedBundle):  # each bar by the network that forecasts it
        return _explain_routed(model, data, rows, background, nsamples, seed)
    raise TypeError(f"no explainer for {type(model).__name__}")


def _explain_routed(
    model: RoutedBundle,
    data: TrainingData,
    rows: np.ndarray,
    background: np.ndarray,
    nsamples: int,
    seed: int,
) -> Attributions:
    """A fine-tuned model's attributions: each row's by its group's copy (or the pre-trained
    network), against the same background; ``base_values`` is the rows' mean base."""
    values = np.empty((len(rows), len(data.feature_names), len(data.horizons)), dtype=np.float64)
    inputs = np.empty((len(rows), len(data.feature_names)), dtype=np.float64)
    bases = np.empty((len(rows), len(data.horizons)), dtype=np.float64)
    for group, at in model.group_rows(data.symbols[rows]).items():
        part = explain(
            model.copies.get(group, model.pretrained), data, rows[at], background, nsamples, seed
        )
        values[at], inputs[at], bases[at] = part.values, part.inputs, part.base_values
    return Attributions(
        values, inputs, bases.mean(axis=0), data.feature_names, data.horizons, "gradient"
    )


def _peers(data: TrainingData, rows: np.ndarray, window: int) -> list[np.ndarray]:
    """Per row, the windows of the other symbols of its cross-section (a full window then)."""
    full = window_ends(data, window)
    groups = by_time(data.ts, full[np.isin(data.ts[full], data.ts[rows])])
    at = {data.ts[g[0]]: g for g in groups}
    offsets = np.arange(-window + 1, 1)
    return [data.features[at[data.ts[r]][at[data.ts[r]] != r][:, None] + offsets] for r in rows]


def explain_tree(
    model: TreeModel,
    features: np.ndarray,
    feature_names: tuple[str, ...],
    horizons: tuple[int, ...],
) -> Attributions:
    values, base_values = [], []
    for part in model.explainable():
        explainer = shap.TreeExplainer(part)
        found = np.asarray(explainer.shap_values(features), dtype=np.float64)
        values.append(found.reshape(len(features), len(feature_names), -1))
        base_values.append(np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64)))
    return Attributions(
        values=np.concatenate(values, axis=-1),
        inputs=np.asarray(features, dtype=np.float64),
        base_values=np.concatenate(base_values),
        feature_names=tuple(feature_names),
        horizons=tuple(horizons),
        method="tree",
    )


def explain_network(
    bundle: SequenceBundle,
    windows: np.ndarray,
    background: np.ndarray,
    feature_names: tuple[str, ...],
    horizons: tuple[int, ...],
    nsamples: int = 100,
    seed: int = 7,
    peers: Sequence[np.ndarray] | None = None,
) -> Attributions:
    """Expected gradients on the scaled windows the network sees; outputs in return units.

    A cross-sectional network explains each window inside its cross-section, the others held
    fixed: ``peers[i]`` (symbols, window, features) are window i's, by default the other
    ``windows`` (the batch is one cross-section, as ``predict_windows`` reads it); one
    explainer per window then, and ``base_values`` is the mean of the windows' own bases. Each
    draw runs the whole cross-section, so a window gets ``nsamples`` / symbols draws (at least
    10): the cost of explaining stays that of a window network, from 4 symbols to hundreds."""

    class _Scaled(torch.nn.Module):
        def __init__(self, net: torch.nn.Module, scale: np.ndarray) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
            self.peers: torch.Tensor | None = None  # the fixed rest of a cross-section

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.peers is None:
                return self.net(x) * self.scale
            rest = self.peers.unsqueeze(0).expand(len(x), *self.peers.shape)
            return self.net.cross_sections(torch.cat([x.unsqueeze(1), rest], 1))[:, 0] * self.scale

    model = _Scaled(bundle.net(), bundle.target_scale).eval()

    def scaled(x: np.ndarray) -> torch.Tensor:
        x = bundle.scaler.transform(np.asarray(x, dtype=np.float32))
        return torch.from_numpy(np.ascontiguousarray(x))

    reference, inputs = scaled(background), scaled(windows)
    if bundle.cross_sectional and peers is None:
        peers = [np.delete(windows, i, axis=0) for i in range(len(windows))]
    contexts = [None] if peers is None else [scaled(p) for p in peers]
    parts = [inputs] if peers is None else [inputs[i : i + 1] for i in range(len(inputs))]
    numpy_state = np.random.get_state()  # shap seeds numpy's global generator: give it back
    found, bases = [], []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for context, part in zip(contexts, parts, strict=True):
            model.peers = context
            explainer = shap.GradientExplainer(model, reference, batch_size=256)
            draws = nsamples if context is None else max(10, nsamples // (1 + len(context)))
            found.append(
                np.asarray(
                    explainer.shap_values(part, nsamples=draws, rseed=seed), dtype=np.float64
                ).reshape(len(part), bundle.window, len(feature_names), len(horizons))
            )
            with torch.no_grad():
                bases.append(model(reference).mean(dim=0).numpy())
    model.peers = None
    np.random.set_state(numpy_state)
    values = np.concatenate(found)  # (samples, window, features, horizons)
    base = np.mean(bases, axis=0)
    return Attributions(
        values=values.sum(axis=1),
        inputs=np.asarray(windows[:, -1, :], dtype=np.float64),
        base_values=base.astype(np.float64),
        feature_names=tuple(feature_names),
        horizons=tuple(horizons),
        method="gradient",
    )


def explain_final(
    model: Any,
    data: TrainingData,
    train: np.ndarray,
    samples: int,
    seed: int = 7,
) -> Attributions:
    """The registered model explained on ``samples`` of the bars it was trained on (the
    reference monitoring compares later attributions with), against other training bars (or
    the same ones, when there are too few to keep them apart)."""
    ends = np.intersect1d(train, window_ends(data, getattr(model, "window", 1)))
    rows = sample_rows(ends, samples, seed)
    rest = np.setdiff1d(ends, rows)
    background = sample_rows(rest if len(rest) >= 20 else ends, min(100, samples), seed + 1)
    return explain(model, data, rows, background, seed=seed)


def _pyplot():
    """pyplot on the Agg backend: figures are written to files, never shown."""
    matplotlib.use("Agg")
    return plt


def summary_figure(attributions: Attributions, horizon: int | None = None, top: int = 20):
    """SHAP's beeswarm summary plot for one horizon (default: the first)."""
    plt = _pyplot()

    h = attributions.horizons.index(horizon) if horizon else 0
    values = attributions.values[:, :, h]
    with warnings.catch_warnings():  # shap's own colormap and jitter RNG deprecations
        warnings.simplefilter("ignore", (FutureWarning, PendingDeprecationWarning))
        shap.summary_plot(
            values,
            attributions.inputs,
            feature_names=list(attributions.feature_names),
            max_display=top,
            show=False,
            plot_size=(9, 0.35 * top + 1.5),
        )
    figure = plt.gcf()
    figure.suptitle(
        f"SHAP values, forecast of the {attributions.horizons[h]}-bar return "
        f"({attributions.method}, {len(values)} bars)"
    )
    return figure


def importance_figure(attributions: Attributions, top: int = 20):
    """Mean |SHAP| of the top features, one bar per horizon."""
    plt = _pyplot()
    table = attributions.importance().head(top).iloc[::-1]
    columns = [f"mean_abs_h{h}" for h in attributions.horizons]
    figure, ax = plt.subplots(figsize=(9, 0.35 * len(table) + 1.5))
    table.set_index("feature")[columns].plot.barh(ax=ax, width=0.8)
    ax.set_xlabel("mean |SHAP| (return units)")
    ax.set_title(f"Feature importance by horizon ({attributions.method} SHAP)")
    figure.tight_layout()
    return figure


def log_to_mlflow(attributions: Attributions) -> None:
    """Into the active run: explanations/shap_summary.png, feature_importance.png, the table
    (feature_importance.csv) and the ranking (feature_ranking.json)."""
    for name, make in (("shap_summary", summary_figure), ("feature_importance", importance_figure)):
        figure = make(attributions)
        mlflow.log_figure(figure, f"explanations/{name}.png")
        plt.close(figure)
    table = attributions.importance()
    mlflow.log_text(table.to_csv(index=False), "explanations/feature_importance.csv")
    mlflow.log_text(
        json.dumps(attributions.to_dict(top=len(table)), indent=2),
        "explanations/feature_ranking.json",
    )
    mlflow.set_tag("top_features", ",".join(attributions.ranking()[:5]))


def save_ranking(url: str, model: str, version: str, run_id: str, attributions: Attributions):
    """Store the version's ranking in ``mlops.feature_attributions`` (replacing an earlier one)."""
    table = attributions.importance()
    columns = [f"mean_abs_h{h}" for h in attributions.horizons]
    rows = [
        (
            model,
            str(version),
            run_id,
            r["feature"],
            int(r["rank"]),
            float(r["mean_abs"]),
            Jsonb({c.removeprefix("mean_abs_"): float(r[c]) for c in columns}),
            attributions.method,
            int(attributions.values.shape[0]),
        )
        for r in table.to_dict(orient="records")
    ]
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "delete from mlops.feature_attributions where model = %s and version = %s",
            (model, str(version)),
        )
        cur.executemany(
            "insert into mlops.feature_attributions (model, version, run_id, feature, rank,"
            " mean_abs, by_horizon, method, samples) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def load_ranking(url: str, model: str, version: str) -> pd.DataFrame:
    """The stored ranking of one model version (empty when none was stored), by rank."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select feature, rank, mean_abs, by_horizon, method, samples, run_id"
            " from mlops.feature_attributions where model = %s and version = %s order by rank",
            (model, str(version)),
        )
        names = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=names)


def rank_agreement(current: pd.DataFrame, reference: pd.DataFrame, top: int = 10) -> dict:
    """How far two importance tables agree: Spearman correlation of the features' mean |SHAP|
    and the share of the reference's top ``top`` features still in the current top ``top``."""
    joined = (
        current.set_index("feature")["mean_abs"]
        .to_frame("current")
        .join(reference.set_index("feature")["mean_abs"].rename("reference"), how="inner")
    )
    rho = spearmanr(joined["current"], joined["reference"]).statistic if len(joined) > 2 else None
    ref_top = set(reference.sort_values("rank")["feature"].head(top))
    cur_top = set(current.sort_values("rank")["feature"].head(top))
    return {
        "spearman": None if rho is None or not np.isfinite(rho) else float(rho),
        "top_overlap": len(ref_top & cur_top) / max(1, len(ref_top)),
        "top": top,
    }


@dataclass
class RegisteredExplanation:
    registered: str
    version: str
    family: str
    attributions: Attributions
    start: str  # first and last bar explained
    end: str
    reference: pd.DataFrame  # the ranking stored when the version was registered (may be empty)

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        out = {
            "registered": self.registered,
            "version": self.version,
            "family": self.family,
            "start": self.start,
            "end": self.end,
        } | self.attributions.to_dict(top)
        if len(self.reference):
            out["agreement_with_reference"] = rank_agreement(
                self.attributions.importance(), self.reference, top
            )
        return out


def _explained_symbols(trained: Sequence[str], given: Sequence[str] | None) -> list[str]:
    """``given`` narrowed to the symbols the model trained on (unless none of them is);
    without ``given``, the trained ones (empty: every symbol)."""
    if not given:
        return list(trained)
    known = [s for s in given if s in set(trained)]
    return known or list(given)


def explain_registered(
    url: str,
    family: str | None = None,
    version: str | int | None = None,
    samples: int = 200,
    seed: int = 7,
    *,
    tracking: TrackingSettings,
    symbols: Sequence[str] | None = None,
) -> RegisteredExplanation:
    """Explain a registered version (default: the family's @champion, else its latest) on the
    most recent ``samples`` bars of the warehouse, against a background of bars it trained on;
    ``tracking``: the MLflow store it is registered in; ``symbols``: read only these (those it
    trained on among them, if any), not the whole training set of a large universe."""
    # deferred: an import cycle, training.tracking imports this module at its top (and
    # training.online imports training.tracking)
    from training.online import resolve_base
    from training.tracking import REGISTERED_NAMES, configure, load_bundle  # deferred: the same

    if samples < 1:
        raise ValueError("--samples must be at least 1")
    configure(url, tracking)
    client = MlflowClient()
    family, found = resolve_base(client, family, version, "explain", (*FAMILIES, *FINE_TUNED))
    name = REGISTERED_NAMES[family]
    run = client.get_run(found.run_id)
    bundle = load_bundle(name, found.version)
    meta = VersionMeta.from_tags(run.data.tags)
    data = load_training_data(url, _explained_symbols(meta.symbols, symbols) or None)
    # the bars the model could have been trained on: full windows after the warm-up
    ends = window_ends(
        data, getattr(bundle, "window", 1), int(run.data.params.get("min_history", 0))
    )
    if not len(ends):
        raise ValueError("features.training_set has no complete window: build features first")
    recent = ends[np.argsort(data.ts[ends], kind="stable")][-samples:]
    trained = meta.trained_through
    seen = ends[data.ts[ends] <= np.datetime64(stamp(trained), "us")] if trained else ends
    rest = np.setdiff1d(seen, recent)
    background = sample_rows(rest if len(rest) >= 20 else ends, 100, seed)
    rows = np.sort(recent)
    return RegisteredExplanation(
        registered=name,
        version=str(found.version),
        family=family,
        attributions=explain(bundle, data, rows, background, seed=seed),
        start=str(data.ts[rows].min()),
        end=str(data.ts[rows].max()),
        reference=load_ranking(url, name, str(found.version)),
    )
