"""Training-side speed: data loading (Arrow via ADBC vs pandas.read_sql, same query), training
throughput of every model family at the seed's sizes on CPU (training.families.FAMILIES: a new
family appears here by itself), and single-window inference latency through the served path.

    python -m bench.training [--symbols 100] [--bars 2520] [--batches 10] [--skip-loading]

``--skip-loading`` measures the models only (no database) and keeps the last run's loading
figures, marked with when they were measured.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import sqlalchemy as sa
import torch
from rich.console import Console
from rich.table import Table

from bench._results import RESULTS, write
from bench._timing import call_latency
from training.data import TrainingData, load_training_data
from training.families import FAMILIES, is_tree
from training.models.networks import build_network
from training.models.sequence import SequenceBundle, masked_mse
from training.models.tabular import TREE_MODELS
from training.portable import Portable
from training.runner import SIZES
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


TREE_ROWS, TREE_ROUNDS = 50_000, 100  # what a tree family's throughput is measured on


def synthetic_rows(n: int, n_features: int, seed: int = 0) -> TrainingData:
    """``n`` rows of one symbol with random features and labels: what a tree family fits on
    here (its speed depends on the rows and columns, not on what they mean)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, n_features)).astype(np.float32)
    returns = (features[:, :5] * 0.01 + rng.normal(scale=0.01, size=(n, 5))).astype(np.float32)
    return TrainingData(
        symbols=np.full(n, "S"), ts=np.arange(n).astype("datetime64[D]").astype("datetime64[us]"),
        features=features, returns=returns, volatility=np.abs(returns),
        feature_names=tuple(f"f{i}" for i in range(n_features)), horizons=(1, 2, 5, 10, 20),
    )  # fmt: skip


def bench_fit(n_features: int, batches: int, batch_size: int = 256, window: int = 60) -> dict:
    """Training windows per second of every family at the seed's sizes on this machine: the
    networks' optimizer steps (forward, backward, update) on batches of windows, the trees'
    fit of ``TREE_ROUNDS`` boosting rounds (a tree's window is the last bar's features)."""
    torch.manual_seed(0)
    x = torch.randn(batch_size, window, n_features)
    y = torch.randn(batch_size, 5) * 0.01
    rates, fitted = {}, {}
    for family in FAMILIES:
        if is_tree(family):
            data = synthetic_rows(TREE_ROWS, n_features)
            model = TREE_MODELS[family](n_estimators=TREE_ROUNDS, early_stopping_rounds=0)
            start = time.perf_counter()
            fitted[family] = model.fit(data, np.arange(TREE_ROWS), np.empty(0, int))
            rates[family] = TREE_ROWS / (time.perf_counter() - start)
            continue
        net = build_network(family, n_features, 5, window, SIZES["seed"][family])
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        net.train()
        for i in range(batches + 1):
            if i == 1:
                start = time.perf_counter()  # the first batch warms up allocators
            opt.zero_grad()
            masked_mse(net(x), y).backward()
            opt.step()
        rates[family] = batch_size * batches / (time.perf_counter() - start)
        fitted[family] = net
    return {"windows_per_s": rates, "fitted": fitted}


def bench_latency(fitted: dict, n_features: int, window: int = 60, n: int = 3000) -> dict:
    """p50/p99 of one window through ``training.portable.Portable.predict``, the path a
    registered version serves in process (raw window in, scaled, predicted; the networks
    compiled for ONNX Runtime), and of the networks run eagerly in torch beside it."""
    torch.set_num_threads(1)  # one request at a time: extra threads only add hand-off latency
    rng = np.random.default_rng(1)
    windows = rng.normal(size=(1, window, n_features)).astype(np.float32)
    scaler = FeatureScaler().fit(rng.normal(size=(1000, n_features)).astype(np.float32))
    names = tuple(f"f{i}" for i in range(n_features))
    out = {}
    for family, model in fitted.items():
        if is_tree(family):
            served = Portable(model.bundle(), "features", names)
            out[family] = call_latency(served.predict, windows[:, -1], n)
            continue
        bundle = SequenceBundle(
            kind=family, n_features=n_features, n_outputs=5, window=window,
            config=dict(SIZES["seed"][family]), state=model.state_dict(), scaler=scaler,
            target_scale=np.ones(5, dtype=np.float32),
        )  # fmt: skip
        repeats = n if family != "transformer" else n // 10  # ~10 ms a call
        out[f"{family}, torch eager"] = call_latency(bundle.predict_windows, windows, repeats)
        served = Portable(replace(bundle).compile(), "windows", names, window)
        out[family] = call_latency(served.predict, windows, repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--skip-loading", action="store_true", help="models only, no database")
    args = parser.parse_args()
    console = Console()
    figures: dict = {"params": vars(args)}
    if args.skip_loading:  # the last run's loading figures stay, with when they were taken
        last = RESULTS / "training.json"
        earlier = json.loads(last.read_text()) if last.exists() else {}
        if "loading" in earlier:
            figures["loading"] = earlier["loading"] | {"measured_at": earlier["measured_at"]}
    else:
        url = prepare(console, args.symbols, args.bars)
        with console.status("data loading: Arrow vs pandas.read_sql"):
            loading = figures["loading"] = bench_loading(url)
        drop_database(url)
        t = Table("data loading", "rows", "rows/s", title="features.training_set -> arrays")
        t.add_row("Arrow (ADBC binary COPY)", f"{loading['rows']:,}",
                  f"{loading['arrow_rows_per_s']:,.0f}")  # fmt: skip
        t.add_row("pandas.read_sql", f"{loading['rows']:,}",
                  f"{loading['read_sql_rows_per_s']:,.0f}")  # fmt: skip
        console.print(t)
        console.print(
            f"Arrow / read_sql = [bold]{loading['ratio']:.1f}x[/] (target >= 3x: "
            f"{'met' if loading['ratio'] >= 3 else 'NOT met'})"
        )
    n_features = len(default_spec().columns())
    with console.status("training throughput (seed sizes, CPU)"):
        fit = bench_fit(n_features, args.batches)
    with console.status("single-window inference latency"):
        latency = bench_latency(fit["fitted"], n_features)
    t = Table("family", "training windows/s (CPU)", "p50 ms", "p99 ms", "p99 < 1 ms",
              title=f"seed sizes: training throughput; one window ({n_features} features) through "
              "Portable.predict in process")  # fmt: skip
    for family, rate in fit["windows_per_s"].items():
        v = latency[family]
        met = "met" if v["p99_ms"] < 1 else "NOT met"
        t.add_row(family, f"{rate:,.0f}", f"{v['p50_ms']:.3f}", f"{v['p99_ms']:.3f}", met)
    console.print(t)
    eager = {k: v for k, v in latency.items() if k.endswith("torch eager")}
    console.print("torch eager, for comparison: " + "; ".join(
        f"{k.split(',')[0]} p99 {v['p99_ms']:.3f} ms" for k, v in eager.items()))  # fmt: skip
    figures |= {
        "n_features": n_features,
        "tree_rows": TREE_ROWS,
        "tree_rounds": TREE_ROUNDS,
        "training_windows_per_s": fit["windows_per_s"],
        "inference_latency": latency,
        "targets": {"arrow_vs_read_sql": 3, "p99_ms_every_family": 1},
    }
    write("training", figures, console)


if __name__ == "__main__":
    main()
