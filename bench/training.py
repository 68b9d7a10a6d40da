"""Training-side speed: data loading (Arrow via ADBC vs pandas.read_sql, same query), training
throughput of the seed-size networks and XGBoost on CPU, and single-window inference latency
(the cross-asset network: one request of 4 symbols' windows, one cross-section, and of 1).

    python -m bench.training [--symbols 100] [--bars 2520] [--batches 10]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import sqlalchemy as sa
import torch
from rich.console import Console
from rich.table import Table

from bench._results import write
from bench._timing import call_latency
from training.data import load_training_data
from training.models.networks import (
    CrossAssetAttention,
    CrossAssetConfig,
    LSTMConfig,
    StackedLSTM,
    TransformerConfig,
    WindowTransformer,
)
from training.models.sequence import SequenceBundle, masked_mse
from training.models.tabular import XGBoostModel
from training.windows import FeatureScaler
from transforms.spec import default_spec
from warehouse.db import drop_database, sqlalchemy_url
from warehouse.settings import get_settings


def prepare(console: Console, n_symbols: int, n_bars: int) -> str:
    """A database with a synthetic market and its feature store."""
    from transforms.dbt_runner import build
    from transforms.garch import update_garch
    from warehouse.db import recreate_database
    from warehouse.ingest import ingest
    from warehouse.providers import SyntheticMarket
    from warehouse.providers.base import FrameProvider
    from warehouse.schema import migrate

    url = recreate_database("bench_training", get_settings())
    migrate(url)
    raw = SyntheticMarket(n_symbols=n_symbols, n_bars=n_bars, freq="1D", seed=11).load()
    with console.status("loading bars and building features"):
        ingest(FrameProvider(raw), url, get_settings())
        update_garch(url)
        assert build(url, full_refresh=True, tests=False).success
    return url


def bench_loading(url: str, repeats: int = 2) -> dict:
    spec = default_spec()
    cols = ", ".join([*spec.columns(), *(f"fwd_ret_{h}" for h in spec.horizons)])
    query = f"select symbol, ts, {cols} from features.training_set order by symbol, ts"
    arrow, pandas = [], []
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
    for _ in range(repeats):
        start = time.perf_counter()
        data = load_training_data(url)
        arrow.append(time.perf_counter() - start)
        start = time.perf_counter()
        with engine.connect() as conn:  # the connectable pandas documents for read_sql
            frame = pd.read_sql(sa.text(query), conn)
        pandas.append(time.perf_counter() - start)
    rows = len(data)
    assert len(frame) == rows
    return {
        "rows": rows,
        "arrow_rows_per_s": rows / min(arrow),
        "read_sql_rows_per_s": rows / min(pandas),
        "ratio": min(pandas) / min(arrow),
    }


def bench_fit(n_features: int, batches: int, batch_size: int = 256, window: int = 60) -> dict:
    torch.manual_seed(0)
    x = torch.randn(batch_size, window, n_features)
    y = torch.randn(batch_size, 5) * 0.01
    out = {}
    for name, net in (
        ("lstm (128-64-32)", StackedLSTM(n_features, 5, LSTMConfig())),
        (
            "transformer (512 x 4 layers)",
            WindowTransformer(n_features, 5, window, TransformerConfig()),
        ),
    ):
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        net.train()
        for i in range(batches + 1):
            if i == 1:
                start = time.perf_counter()  # the first batch warms up allocators
            opt.zero_grad()
            masked_mse(net(x), y).backward()
            opt.step()
        out[name] = batch_size * batches / (time.perf_counter() - start)
    out["cross_asset (64 x 2 layers, 32 symbols)"] = cross_asset_fit(
        n_features, batches, batch_size, window
    )
    rng = np.random.default_rng(0)
    n = 50_000
    feats = rng.normal(size=(n, n_features)).astype(np.float32)
    target = (feats[:, :5] * 0.01 + rng.normal(scale=0.01, size=(n, 5))).astype(np.float32)
    model = XGBoostModel(n_estimators=100, early_stopping_rounds=0)
    start = time.perf_counter()
    import xgboost as xgb

    model.model = xgb.XGBRegressor(n_estimators=100, max_depth=4, tree_method="hist", n_jobs=2)
    model.model.fit(feats, target)
    out["xgboost (100 trees, 5 outputs)"] = n / (time.perf_counter() - start)
    return {"samples_per_s": out, "xgb_model": model, "features": feats}


def cross_asset_fit(
    n_features: int, batches: int, batch_size: int = 256, window: int = 60, symbols: int = 32
) -> float:
    """Training windows/s of the seed-size cross-asset network: batches of whole cross-sections
    (``batch_size`` windows, ``symbols`` per cross-section), as ``CrossAssetModel`` feeds it."""
    torch.manual_seed(0)
    x = torch.randn(batch_size // symbols, symbols, window, n_features)
    y = torch.randn(batch_size // symbols, symbols, 5) * 0.01
    net = CrossAssetAttention(n_features, 5, CrossAssetConfig()).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for i in range(batches + 1):
        if i == 1:
            start = time.perf_counter()  # the first batch warms up allocators
        opt.zero_grad()
        masked_mse(net.cross_sections(x), y).backward()
        opt.step()
    return x.shape[0] * symbols * batches / (time.perf_counter() - start)


def bench_latency(
    n_features: int, xgb_model: XGBoostModel, window: int = 60, n: int = 3000
) -> dict:
    """Through the same bundle path the trainers return: raw window in, scaled, predicted; the
    networks both eagerly in torch and compiled for ONNX Runtime, as registered models run."""
    torch.set_num_threads(1)  # one request at a time: extra threads only add hand-off latency
    rng = np.random.default_rng(1)
    windows = rng.normal(size=(1, window, n_features)).astype(np.float32)
    scaler = FeatureScaler().fit(rng.normal(size=(1000, n_features)).astype(np.float32))
    predictors = {}
    for kind, net, config in (
        ("lstm", StackedLSTM(n_features, 5, LSTMConfig()), LSTMConfig()),
        (
            "transformer",
            WindowTransformer(n_features, 5, window, TransformerConfig()),
            TransformerConfig(),
        ),
    ):
        bundle = SequenceBundle(
            kind=kind,
            n_features=n_features,
            n_outputs=5,
            window=window,
            config=asdict(config),
            state=net.state_dict(),
            scaler=scaler,
            target_scale=np.ones(5, dtype=np.float32),
        )
        repeats = n if kind == "lstm" else n // 10
        predictors[f"{kind}, torch eager"] = (bundle.predict_windows, windows, repeats)
        served = replace(bundle).compile()  # what training registers and serving loads
        predictors[f"{kind}, ONNX Runtime (served)"] = (served.predict_windows, windows, repeats)
    net = CrossAssetAttention(n_features, 5, CrossAssetConfig())
    bundle = SequenceBundle(
        kind="cross_asset", n_features=n_features, n_outputs=5, window=window,
        config=asdict(CrossAssetConfig()), state=net.state_dict(), scaler=scaler,
        target_scale=np.ones(5, dtype=np.float32),
    )  # fmt: skip
    served = replace(bundle).compile()
    section = rng.normal(size=(4, window, n_features)).astype(np.float32)  # one request, 4 symbols
    for label, x in (("4 symbols", section), ("1 window", windows)):
        name = f"cross_asset, {label}"
        predictors[f"{name}, torch eager"] = (bundle.predict_windows, x, n // 3)
        predictors[f"{name}, ONNX Runtime (served)"] = (served.predict_windows, x, n // 3)
    predictors["xgboost"] = (xgb_model.predict_features, windows[:, -1], n)
    return {
        name: call_latency(predict, x, repeats)
        for name, (predict, x, repeats) in predictors.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    console = Console()
    url = prepare(console, args.symbols, args.bars)
    with console.status("data loading: Arrow vs pandas.read_sql"):
        loading = bench_loading(url)
    n_features = len(default_spec().columns())
    with console.status("training throughput (seed sizes, CPU)"):
        fit = bench_fit(n_features, args.batches)
    with console.status("single-window inference latency"):
        latency = bench_latency(n_features, fit["xgb_model"])

    t = Table("data loading", "rows", "rows/s", title="features.training_set -> arrays")
    t.add_row(
        "Arrow (ADBC binary COPY)", f"{loading['rows']:,}", f"{loading['arrow_rows_per_s']:,.0f}"
    )
    t.add_row("pandas.read_sql", f"{loading['rows']:,}", f"{loading['read_sql_rows_per_s']:,.0f}")
    console.print(t)
    console.print(
        f"Arrow / read_sql = [bold]{loading['ratio']:.1f}x[/] (target >= 3x: "
        f"{'met' if loading['ratio'] >= 3 else 'NOT met'})"
    )
    t = Table("model", "training samples/s (CPU)", title="training throughput")
    for name, rate in fit["samples_per_s"].items():
        t.add_row(name, f"{rate:,.0f}")
    console.print(t)
    t = Table("model", "p50 ms", "p99 ms", "target", title="single-window inference, in process")
    for name, v in latency.items():
        if name.startswith("lstm, ONNX") or name == "xgboost":
            target = "p99 < 1 ms " + ("met" if v["p99_ms"] < 1 else "NOT met")
        else:
            target = "reported"
        t.add_row(name, f"{v['p50_ms']:.3f}", f"{v['p99_ms']:.3f}", target)
    console.print(t)
    drop_database(url)
    figures = {
        "params": vars(args),
        "loading": loading,
        "training_samples_per_s": fit["samples_per_s"],
        "inference_latency": latency,
        "targets": {"arrow_vs_read_sql": 3, "p99_ms_lstm_xgboost": 1},
    }
    write("training", figures, console)


if __name__ == "__main__":
    main()
