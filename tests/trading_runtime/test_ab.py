"""Champion/challenger in trading: a shadow strategy's orders go to a hypothetical book of its
own, never to the venue, and leave the live book exactly as it would be alone; the comparison
of the two books gives a paired test whose sign agrees with the curves."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cli.app import app
from quant.conventions import Conventions
from registry.loaded import LoadedModel
from serving.errors import RequestError
from serving.model_set import ModelSet, Serving
from serving.predictor import Predictor
from serving.schemas import ModelCard, ModelInfo, PredictRequest, PredictResponse
from serving.settings import ServingSettings
from trading_runtime import runs
from trading_runtime.ab import compare
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.runs import run

START = date(2011, 1, 3)
LIVE = StrategyConfig(name="trend", signal="sma-cross", fast=10, slow=40, sizing="fixed")
SHADOW = StrategyConfig(name="hold", signal="buy-and-hold", sizing="equal", shadow=True)


def submitted(url: str, stream: str) -> list[dict]:
    journal = Journal(url, stream)
    try:
        return [e.order.to_payload() for e in journal.read(types=["order_submitted"])]
    finally:
        journal.close()


def venue_orders(log) -> list[str]:
    return [json.loads(line)["client_id"] for line in log.read_text().splitlines()]


def curve(result, account: str) -> tuple[np.ndarray, float]:
    """An account's per-bar returns and total return, from its equity curve."""
    full = np.r_[
        result.book.accounts[account].initial, [c["equity"][account] for c in result.equity_curve]
    ]
    return np.diff(full) / full[:-1], full[-1] / full[0] - 1


def account_fills(result, account: str) -> list[dict]:
    return [f for f in result.fills if f["account"] == account]


def test_a_shadow_book_never_reaches_the_venue_nor_moves_the_live_book(market, tmp_path):
    both = run(
        market,
        RunConfig(stream="ab-both", strategies=[LIVE, SHADOW], start=START),
        venue_log=tmp_path / "both.jsonl",
    )
    alone = run(market, RunConfig(stream="ab-alone", strategies=[LIVE], start=START))

    live_ids = [o["client_id"] for o in submitted(market, "ab-both") if o["account"] == "trend"]
    assert live_ids and venue_orders(tmp_path / "both.jsonl") == live_ids  # only live orders
    assert account_fills(both, "hold")  # the hypothetical book filled on its own venue
    assert both.book.accounts["hold"].shadow and not both.book.accounts["trend"].shadow
    assert account_fills(both, "trend") == alone.fills
    trend = [c["equity"]["trend"] for c in both.equity_curve]
    assert trend == [c["equity"]["trend"] for c in alone.equity_curve]
    assert both.metrics["trend"] == alone.metrics["trend"]
    assert both.metrics["total"]["final_equity"] == both.metrics["trend"]["final_equity"]

    found = compare(both, Conventions())
    assert (found.live, found.shadow, found.bars) == ("trend", "hold", len(trend))
    assert 0.0 <= found.p_value <= 1.0 and 0.0 <= found.p_shadow_better <= 1.0
    (r_live, g_live), (r_hold, g_hold) = (curve(both, name) for name in ("trend", "hold"))
    assert found.mean_difference == pytest.approx(np.mean(r_hold - r_live))
    assert np.sign(found.statistic) == np.sign(found.mean_difference)
    assert found.total_return_difference == pytest.approx(g_hold - g_live)
    assert ("better than" in found.verdict) == (found.p_value < 0.05)


def test_trade_ab_prints_the_comparison_or_says_there_is_no_shadow(market, tmp_path):
    env = {"QTIS_DATABASE_URL": market, "QTIS_HOME": str(tmp_path / ".qtis")}
    runner = CliRunner()
    plan = tmp_path / "ab.yml"
    strategies = [
        s.model_dump(include={"name", "signal", "sizing", "shadow"}) for s in (LIVE, SHADOW)
    ]
    plan.write_text(yaml.safe_dump({"strategies": strategies}))
    args = ["trade", "backtest", "--strategies", str(plan), "--start", "2012-06-01"]
    backtest = runner.invoke(app, [*args, "--stream", "ab-cli"], env=env)
    assert backtest.exit_code == 0, backtest.output
    assert "live vs shadow" in backtest.output and "p=" in backtest.output

    out = tmp_path / "ab.json"
    found = runner.invoke(app, ["trade", "ab", "ab-cli", "--json-out", str(out)], env=env)
    assert found.exit_code == 0, found.output
    written = json.loads(out.read_text())
    assert (written["live"], written["shadow"]) == ("trend", "hold")
    assert 0 <= written["p_value"] <= 1 and written["verdict"] in found.output

    later = ["--start", "2013-01-02", "--stream", "ab-no"]
    plain = runner.invoke(app, ["trade", "backtest", *later], env=env)
    assert plain.exit_code == 0 and "live vs shadow" not in plain.output, plain.output
    missing = runner.invoke(app, ["trade", "ab", "ab-no"], env=env)
    assert missing.exit_code == 2 and "no shadow account" in missing.output
    refused = runner.invoke(app, ["trade", "backtest", "--challenger-shadow"], env=env)
    assert refused.exit_code == 2 and "goes with --signal model" in refused.output


# --- a champion and a challenger model ------------------------------------------------------

FEATURES = ["roc_10", "rsi_14"]


def card(role: str, through: datetime) -> ModelCard:
    return ModelCard(
        role=role, model=f"qtis-{role}", version="1", window=5, input_kind="windows",
        features=FEATURES, horizons=[1, 5], run_id=role, loaded_at=datetime.now(UTC),
        trained_through=through,
    )  # fmt: skip


class TwoModels:
    """The predictor's interface: the champion always long, the challenger long on momentum."""

    def __init__(self, challenger: bool = True) -> None:
        self.cards = {
            "champion": card("champion", datetime(2011, 12, 30, tzinfo=UTC)),
            "challenger": card("challenger", datetime(2012, 3, 30, tzinfo=UTC)),
        }
        if not challenger:
            del self.cards["challenger"]
        self.asked: set[str] = set()

    def info(self) -> ModelInfo:
        champion, challenger = self.cards["champion"], self.cards.get("challenger")
        return ModelInfo(champion=champion, challenger=challenger, ab_share=0.0, batching=False)

    def predict(self, request: PredictRequest, role: str | None = None) -> PredictResponse:
        self.asked.add(role)
        windows = np.asarray(request.windows)
        signal = 0.05 * (np.sign(windows[:, -1, 0]) if role == "challenger" else 1.0)
        predictions = np.column_stack([np.broadcast_to(signal, len(windows))] * 2)
        answered = self.cards[role]
        return PredictResponse.model_construct(
            predictions=predictions.tolist(), role=role, model=answered.model,
            version=answered.version,
        )  # fmt: skip


def test_the_champion_trades_live_and_the_challenger_in_shadow(market, tmp_path, monkeypatch):
    models = TwoModels()
    monkeypatch.setattr(runs, "model_client", lambda url, model_url, settings, tracking: models)
    champion = StrategyConfig(signal="model", sizing="equal", rebalance=False)
    challenger = champion.model_copy(
        update={"name": "challenger", "model_role": "challenger", "shadow": True}
    )
    config = RunConfig(stream="ab-models", strategies=[champion, challenger], end=date(2013, 3, 1))
    result = run(market, config, venue_log=tmp_path / "venue.jsonl")

    assert models.asked == {"champion", "challenger"}  # each asked by role, no A/B draw
    assert result.equity_curve[0]["ts"] >= "2012-03-31"  # after what either model saw
    assert account_fills(result, "main") and account_fills(result, "challenger")
    assert all(cid.startswith("main-") for cid in venue_orders(tmp_path / "venue.jsonl"))
    assert compare(result, Conventions()).shadow == "challenger"

    monkeypatch.setattr(
        runs, "model_client", lambda url, model_url, settings, tracking: TwoModels(challenger=False)
    )
    with pytest.raises(LookupError, match=r"no model holds @challenger.*qtis train"):
        run(market, config.model_copy(update={"stream": "ab-nobody"}))


def test_the_predictor_answers_as_the_role_asked():
    def model(role: str, window: int, value: float) -> LoadedModel:
        bundle = SimpleNamespace(predict_windows=lambda w: np.full((len(w), 1), value))
        impl = SimpleNamespace(input_kind="windows", bundle=bundle)
        return LoadedModel(role, f"qtis-{role}", "1", role, impl, window, ("a", "b"), (1,))

    models = ModelSet("postgresql://unused", None, 1)  # the registry is beside the point here
    models.current = Serving(model("champion", 2, 1.0), model("challenger", 3, -1.0))
    predictor = Predictor.__new__(Predictor)
    settings = ServingSettings(serve_ab_share=1.0)  # A/B: the challenger answers all
    predictor._compose("postgresql://unused", settings, models, None)
    request = PredictRequest(windows=np.zeros((2, 3, 2)).tolist())
    assert predictor.predict(request).role == "challenger"
    assert predictor.predict(request, role="champion").predictions == [[1.0], [1.0]]
    assert predictor.predict(request, role="challenger").predictions == [[-1.0], [-1.0]]
    short = PredictRequest(windows=np.zeros((1, 2, 2)).tolist())
    assert predictor.predict(short, role="champion").role == "champion"
    with pytest.raises(RequestError, match="qtis-challenger needs 3 bars"):
        predictor.predict(short, role="challenger")  # checked against the model asked
    models.current = Serving(models.current.champion, None)
    with pytest.raises(RequestError, match="no model holds @challenger"):
        predictor.predict(request, role="challenger")
