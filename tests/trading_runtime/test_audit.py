"""The audit trail: every order decision names the model (name, version, artifact hash) and the
forecast it acted on; the journal refuses edits, chains each event to the one before it, and
`qtis trade replay` finds the first broken link."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import psycopg
import pytest

from registry.loaded import LoadedModel
from serving.predictor import Predictor
from serving.settings import ServingSettings
from trading_runtime import events as ev
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.runs import run
from training.lineage import VersionMeta
from transforms.spec import default_spec

ARTIFACT = "ab" * 32
START, END = date(2012, 1, 3), date(2012, 5, 1)


def momentum_model(artifact: str | None = ARTIFACT) -> LoadedModel:
    """A registered-looking model whose forecast a test can recompute from the bars: the
    5-bar mean's distance from the 20-bar mean, for every horizon."""

    def predict_features(x: np.ndarray) -> np.ndarray:
        value = (x[:, 0].astype(np.float64) - x[:, 1]) / x[:, 1]
        return np.repeat(value[:, None], len(default_spec().horizons), axis=1)

    impl = SimpleNamespace(input_kind="features", bundle=SimpleNamespace(
        predict_features=predict_features))  # fmt: skip
    return LoadedModel(
        "champion", "qtis-test", "7", "run-7", impl, 1, ("sma_5", "sma_20"),
        default_spec().horizons, artifact_sha256=artifact,
    )  # fmt: skip


def momentum(url: str) -> pd.DataFrame:
    """(symbol, ts) -> the forecast ``momentum_model`` gives, from the bars themselves."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("select symbol, ts, close from market.bars order by symbol, ts")
        bars = pd.DataFrame(rows.fetchall(), columns=["symbol", "ts", "close"])
    close = bars.groupby("symbol")["close"]
    fast = close.transform(lambda c: c.rolling(5).mean())
    slow = close.transform(lambda c: c.rolling(20).mean())
    bars["forecast"] = (fast - slow) / slow
    return bars.set_index(["symbol", "ts"])["forecast"]


def events_of(url: str, stream: str, types: list[str] | None = None) -> list[ev.Event]:
    journal = Journal(url, stream)
    try:
        return list(journal.read(types=types))
    finally:
        journal.close()


@pytest.fixture(scope="module")
def audited(market, tmp_path_factory):
    """A backtest of the momentum model (market orders, and TWAP in a second account) next to
    a rule strategy, with a notional cap that denies the dearer symbols' orders."""
    cap = {"max_symbol_weight": 0.02}  # GOOG: 100 x ~$300 is 3%
    strategies = [
        StrategyConfig(name="main", signal="model", sizing="fixed", quantity=100, limits=cap),
        StrategyConfig(name="sliced", signal="model", sizing="fixed", quantity=100,
                       algo="twap", algo_bars=2),
        StrategyConfig(name="rule", signal="sma-cross", fast=5, slow=20, sizing="fixed"),
    ]  # fmt: skip
    predictor = Predictor.of(market, momentum_model(), ServingSettings(serve_shadow_log=False))
    config = RunConfig(stream="audited", strategies=strategies, start=START, end=END)
    run(market, config, predictor=predictor, venue_log=tmp_path_factory.mktemp("v") / "v.jsonl")
    return market, "audited"


def test_every_order_decision_journals_the_model_and_its_forecast(audited):
    url, stream = audited
    expected = momentum(url)
    bars = {e.step: pd.Timestamp(e.ts) for e in events_of(url, stream, [ev.BAR_CLOSED])}
    decided = events_of(url, stream, [ev.ORDER_SUBMITTED, ev.ORDER_DENIED, ev.SCHEDULE_STARTED])
    by_account: dict[str, list] = {}
    for event in decided:
        order = getattr(event, "order", event)  # a schedule's start names account and symbol
        by_account.setdefault(order.account, []).append(event)
    main, sliced, rule = by_account["main"], by_account["sliced"], by_account["rule"]
    assert {type(e) for e in main} == {ev.OrderSubmitted, ev.OrderDenied}  # both journaled
    starts = [e for e in sliced if isinstance(e, ev.ScheduleStarted)]
    assert starts
    for event in main + starts:
        decision = event.decision
        assert decision.signal == "model" and decision.horizon == 1
        assert decision.model == ev.ModelLineage(
            name="qtis-test", version="7", role="champion", run_id="run-7",
            artifact_sha256=ARTIFACT,
        )  # fmt: skip
        if isinstance(event, ev.ScheduleStarted):
            symbol, when = event.symbol, bars[event.step]
        else:
            symbol, when = event.order.symbol, pd.Timestamp(event.order.created)
        assert decision.forecast == pytest.approx(expected[(symbol, when)], abs=1e-6)
    # a TWAP's slices carry no decision of their own: theirs is their parent's
    assert all(e.decision is None for e in sliced if isinstance(e, ev.OrderSubmitted))
    assert rule and all(
        e.decision.signal == "sma-cross" and e.decision.model is None
        and e.decision.forecast is None
        for e in rule
    )  # fmt: skip


def test_a_version_tag_gives_the_artifact_hash_and_a_missing_one_gives_none():
    assert VersionMeta.from_tags({"artifact_sha256": ARTIFACT}).artifact_sha256 == ARTIFACT
    assert VersionMeta.from_tags({}).artifact_sha256 is None
    card = Predictor.of("postgresql://unused", momentum_model(None), ServingSettings())
    assert card.info().champion.artifact_sha256 is None
