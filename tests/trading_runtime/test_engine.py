"""The engine on the bundled sample: reproducible, several strategies with their own accounts,
a point-in-time universe, and a journal that cannot be written stops trading."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import psycopg
import pytest

from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.engine import EngineHalted
from trading_runtime.journal import Journal
from trading_runtime.runs import out_of_sample, run

IMPACT = {"slippage": "impact", "impact_eta": 0.5, "participation": 0.05, "commission_bps": 1}


def test_backtests_are_identical_between_runs(market):
    strategy = StrategyConfig(signal="sma-cross", fast=10, slow=40, trail_atr=3.0)
    results = [
        run(
            market,
            RunConfig(
                stream=f"same-{k}", strategies=[strategy], costs=IMPACT, start=date(2009, 1, 2)
            ),
        )
        for k in range(2)
    ]
    a, b = (r.to_json() for r in results)
    assert len(a["fills"]) > 20
    assert any(f["client_id"].endswith("-stop") for f in a["fills"])  # stops did fire
    for key in ("fills", "equity_curve", "metrics", "denials"):
        assert a[key] == b[key], key


def test_strategies_trade_their_own_sub_accounts(market):
    strategies = [
        StrategyConfig(
            name="trend",
            signal="sma-cross",
            fast=20,
            slow=50,
            sizing="fixed",
            quantity=50,
            capital=200_000,
        ),
        StrategyConfig(
            name="hold", signal="buy-and-hold", capital=300_000, limits={"max_symbol_weight": 0.1}
        ),
    ]
    result = run(market, RunConfig(stream="multi", strategies=strategies, start=date(2010, 1, 1)))
    book = result.book
    assert set(book.accounts) == {"trend", "hold"}
    for fill in result.fills:
        assert fill["client_id"].startswith(fill["account"] + "-")
    denied = [o for o in book.orders.values() if o.status == "denied"]
    assert denied and {o.account for o in denied} == {"hold"}  # only its tighter limit bites
    assert all("concentration" in o.reason for o in denied)
    totals = result.metrics["total"]
    assert totals["initial"] == 500_000
    parts = result.metrics["trend"]["final_equity"] + result.metrics["hold"]["final_equity"]
    assert totals["final_equity"] == pytest.approx(parts, abs=0.02)


def test_no_symbol_trades_before_it_listed(market):
    with psycopg.connect(market, autocommit=True) as conn:
        conn.execute(
            "update market.instruments set listed_from = '2008-06-02' where symbol = 'IBM'"
        )
    try:
        strategy = StrategyConfig(signal="sma-cross", fast=5, slow=20, sizing="fixed")
        result = run(market, RunConfig(stream="pit", strategies=[strategy], start=date(2007, 1, 1)))
    finally:
        with psycopg.connect(market, autocommit=True) as conn:
            conn.execute("update market.instruments set listed_from = null where symbol = 'IBM'")
    ibm = [f["ts"][:10] for f in result.fills if f["symbol"] == "IBM"]
    assert ibm and min(ibm) > "2008-06-02"
    assert any(f["ts"][:10] < "2008-06-02" for f in result.fills)  # the others traded


def test_an_unwritable_journal_halts_trading_and_says_why(market, tmp_path):
    with psycopg.connect(market, autocommit=True) as conn:
        conn.execute(
            """
            create or replace function runtime.test_disk_full() returns trigger as $$
            begin
              if new.stream = 'doomed' and new.type = 'bar_closed'
                 and (new.payload ->> 'step')::int >= 60 then
                raise exception 'disk full (simulated)';
              end if;
              return new;
            end $$ language plpgsql
            """
        )
        conn.execute(
            "create trigger test_disk_full before insert on runtime.events"
            " for each row execute function runtime.test_disk_full()"
        )
    log = tmp_path / "venue.jsonl"
    strategy = StrategyConfig(signal="sma-cross", fast=2, slow=5, sizing="fixed")
    config = RunConfig(
        mode="paper", stream="doomed", strategies=[strategy], warmup_bars=0, start=date(2012, 1, 3)
    )
    try:
        with pytest.raises(EngineHalted, match="disk full"):
            run(market, config, venue_log=log)
    finally:
        with psycopg.connect(market, autocommit=True) as conn:
            conn.execute("drop trigger test_disk_full on runtime.events")
    journal = Journal(market, "doomed")
    try:
        sent = [e.order.client_id for e in journal.read(types=["order_submitted"])]
    finally:
        journal.close()
    received = log.read_text().splitlines()
    assert sent and len(received) == len(sent)  # nothing reached the venue unjournaled


def test_a_model_trades_only_bars_after_its_training():
    """After its label end (the last bar a label it saw looked at), else, for a version from
    before that tag, after its last training bar."""
    older = SimpleNamespace(
        model="qtis-xgboost", version="3", trained_through=datetime(2012, 6, 29, tzinfo=UTC),
        label_end=None,
    )  # fmt: skip
    card = SimpleNamespace(**vars(older) | {"label_end": datetime(2012, 7, 27, tzinfo=UTC)})
    config = RunConfig(stream="oos", strategies=[StrategyConfig(signal="model")])
    assert out_of_sample(config, older).start == date(2012, 6, 30)
    assert out_of_sample(config, card).start == date(2012, 7, 28)
    early = config.model_copy(update={"start": date(2012, 7, 2)})
    with pytest.raises(ValueError, match=r"has seen bars \(and labels\) through 2012-07-27"):
        out_of_sample(early, card)
    allowed = early.model_copy(update={"in_sample": True})
    assert out_of_sample(allowed, card).start == date(2012, 7, 2)
