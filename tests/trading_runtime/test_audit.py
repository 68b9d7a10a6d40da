"""The audit trail: every order decision names the model (name, version, artifact hash) and the
forecast it acted on; the journal refuses edits, chains each event to the one before it, and
`qtis trade replay` finds the first broken link."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from registry.model_registry import ModelRegistry
from registry.settings import TrackingSettings
from serving.predictor import Predictor
from serving.settings import ServingSettings
from tests.support.momentum import ARTIFACT, momentum_model
from trading_runtime import events as ev
from trading_runtime.audit import audit_trail
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal, JournalError
from trading_runtime.runs import run
from trading_runtime.verify import verify_chain
from training.lineage import VersionMeta
from warehouse.db import sqlalchemy_url
from warehouse.schema import MIGRATIONS_DIR, migrate

# JSON values as a payload may hold them (jsonb refuses NaN, infinities and NUL characters)
TEXT = st.characters(codec="utf-8", exclude_characters="\0")  # what Postgres text holds
SCALARS = (
    st.none() | st.booleans() | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(TEXT)
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(TEXT, max_size=5), inner,
                                                               max_size=3),
    max_leaves=8,
)  # fmt: skip
START, END = date(2012, 1, 3), date(2012, 5, 1)


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


@pytest.mark.storage
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


@pytest.mark.storage
def test_the_audit_trail_gives_each_order_its_model_lineage_and_journal_place(audited):
    url, stream = audited
    journal = Journal(url, stream)
    try:
        trail = audit_trail(journal)
        hashes = {row.seq: row.hash.hex() for row in journal.links()}
    finally:
        journal.close()
    by_id = {o.client_id: o for o in trail}
    model_orders = [o for o in trail if o.account in ("main", "sliced")]
    assert model_orders and all(
        o.decision.model.artifact_sha256 == ARTIFACT and o.decision.forecast is not None
        for o in model_orders
    )  # fmt: skip
    slices = [o for o in trail if o.parent_id is not None]
    assert slices and all(o.decision_of == o.parent_id for o in slices)
    for order in trail:
        assert hashes[order.seq] == order.event_hash  # the export points into the chain
        row = order.to_row()
        if order.account == "rule":
            assert row["model"] is None and row["signal"] == "sma-cross"
        else:
            assert (row["model"], row["version"], row["artifact_sha256"]) == (
                "qtis-test", "7", ARTIFACT)  # fmt: skip
    denied = [o for o in trail if o.risk.result == "denied"]
    assert denied and all(by_id[o.client_id].status == "denied" for o in denied)


@pytest.mark.slow
def test_a_registered_champion_journals_its_version_and_artifact_tag(champion, tmp_path):
    """The real path: the digest recorded at registration (a version tag in MLflow), read
    through VersionMeta by the registry, on the served card, in each decision."""
    url, env, _ = champion
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        registry = ModelRegistry(url, TrackingSettings())
        recorded = registry.meta("qtis-xgboost", "1").artifact_sha256
        assert recorded and len(recorded) == 64  # set at registration
        strategy = StrategyConfig(signal="model", sizing="fixed", quantity=10)
        config = RunConfig(stream="registered", symbols=["IBM", "MSFT"], strategies=[strategy],
                           start=date(2012, 9, 4), in_sample=True)  # fmt: skip
        run(url, config, venue_log=tmp_path / "venue.jsonl")
        run_id = registry.run_id("qtis-xgboost", "1")
    decided = events_of(url, "registered", [ev.ORDER_SUBMITTED, ev.ORDER_DENIED])
    assert decided and {e.decision.model for e in decided} == {
        ev.ModelLineage("qtis-xgboost", "1", "champion", run_id, recorded)
    }  # fmt: skip


def test_a_version_tag_gives_the_artifact_hash_and_a_missing_one_gives_none():
    assert VersionMeta.from_tags({"artifact_sha256": ARTIFACT}).artifact_sha256 == ARTIFACT
    assert VersionMeta.from_tags({}).artifact_sha256 is None
    card = Predictor.of("postgresql://unused", momentum_model(None), ServingSettings())
    assert card.info().champion.artifact_sha256 is None


# --- an append-only, hash-chained journal -----------------------------------------------------


def alert(n: int, key: str | None = None) -> ev.RiskAlert:
    return ev.RiskAlert("main", f"2012-01-{n:02d}", "test", f"alert {n}", key=key)


def stored(url: str, stream: str) -> list[tuple]:
    """(seq, type, key, payload, prev_hash, hash) of the stream's rows, in order."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select seq, type, key, payload, prev_hash, hash from runtime.events"
            " where stream = %s order by seq",
            (stream,),
        ).fetchall()


def written(url: str, stream: str, *batches: list[ev.Event]) -> None:
    journal = Journal(url, stream)
    try:
        for batch in batches:
            journal.write(batch)
    finally:
        journal.close()


@pytest.mark.storage
@pytest.mark.parametrize(
    "statement",
    [
        "update runtime.events set payload = '{}' where stream = 'kept'",
        "delete from runtime.events where stream = 'kept'",
        "truncate runtime.events",
    ],
)
def test_the_journal_refuses_edits_deletes_and_truncation(db_url, statement):
    written(db_url, "kept", [alert(1), alert(2)])
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        pytest.raises(psycopg.Error, match=r"runtime\.events is append-only"),
    ):
        conn.execute(statement)
    assert [r[3]["message"] for r in stored(db_url, "kept")] == ["alert 1", "alert 2"]


def reference_hash(stream: str, prev: bytes | None, type_: str, key, payload: dict) -> bytes:
    """The documented link, computed here from its definition: sha256 over the previous
    event's hash (before the first: sha256 of the stream's name), the type, the key and the
    payload as sorted, compact JSON."""
    if prev is None:
        prev = hashlib.sha256(b"qtis.runtime.events\0" + stream.encode()).digest()
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    mark = b"" if key is None else b"\1" + key.encode()
    return hashlib.sha256(prev + type_.encode() + b"\0" + mark + b"\0" + text.encode()).digest()


@pytest.mark.storage
def test_each_event_is_chained_to_the_one_before_it_whoever_appends_it(db_url):
    """The engine writes, an operator's command lands from another process in between (the
    engine's idea of the last event is stale), and a redo of a keyed event is skipped: one
    unbroken chain, in seq order."""
    engine, operator = Journal(db_url, "chained"), Journal(db_url, "chained")
    try:
        engine.write([alert(1, "a:1"), alert(2)])
        operator.append_command(ev.Command("halt", "ops", "test"))
        engine.write([alert(1, "a:1"), alert(3, "a:3")])  # a:1 again: a redo, kept once
        engine.write([alert(4)], snapshot={"state": 1})
    finally:
        engine.close()
        operator.close()
    rows = stored(db_url, "chained")
    assert [r[1] for r in rows] == ["risk_alert", "risk_alert", "command", "risk_alert",
                                    "risk_alert"]  # fmt: skip
    prev = hashlib.sha256(b"qtis.runtime.events\0chained").digest()
    for _, type_, key, payload, prev_hash, digest in rows:
        assert prev_hash == prev  # linked to the row before it: no fork, no gap
        assert digest == reference_hash("chained", prev, type_, key, payload)
        prev = digest


def test_a_backtest_journal_copies_behind_the_loop_in_one_chain(db_url):
    """Batches COPYed on the writer thread while the engine goes on, an operator's command
    landing meanwhile (the writer's last hash is stale), a redo of a keyed event: every event
    once, in the engine's order, one unbroken chain."""
    engine = Journal(db_url, "behind", batched=True, batch_size=2)
    operator = Journal(db_url, "behind")
    try:
        engine.write([alert(1, "a:1"), alert(2)])  # a full batch: copied behind
        operator.append_command(ev.Command("halt", "ops", "test"))
        engine.write([alert(1, "a:1"), alert(3, "a:3")])  # a:1 again: a redo, kept once
        engine.write([alert(4)])
    finally:
        engine.close()
        operator.close()
    rows = stored(db_url, "behind")
    alerts = [r[3]["message"] for r in rows if r[1] == "risk_alert"]
    assert alerts == ["alert 1", "alert 2", "alert 3", "alert 4"]
    assert [r[1] for r in rows].count("command") == 1
    prev = hashlib.sha256(b"qtis.runtime.events\0behind").digest()
    for _, type_, key, payload, prev_hash, digest in rows:
        assert prev_hash == prev
        assert digest == reference_hash("behind", prev, type_, key, payload)
        prev = digest


def test_a_batch_that_fails_behind_the_loop_stops_the_next_write(db_url):
    """jsonb refuses NaN: the batch copied behind fails, and the engine hears it at its next
    write, as a JournalError (the engine halts on one); nothing after it is written, not even
    at close (a journal with a gap would replay to another book)."""
    journal = Journal(db_url, "behind-fails", batched=True, batch_size=1)
    try:
        journal.write([ev.LimitsChanged("main", {"max_var": float("nan")}, "ops", "test")])
        with pytest.raises(JournalError, match="cannot write the journal of 'behind-fails'"):
            journal.write([alert(2)])
        with pytest.raises(JournalError, match=r"NaN|invalid input syntax"):
            journal.write([alert(3)])
    finally:
        journal.close()
    assert stored(db_url, "behind-fails") == []


@pytest.mark.storage
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(limits=st.dictionaries(st.text(TEXT, max_size=8), JSON, max_size=6))
@example(limits={"z": -0.0, "big": 1e16, "l": [1e300, 5e-324, -1.5e17, 10**30], "s": "e+ -0.0"})
def test_any_payload_hashes_the_same_after_the_round_trip_through_jsonb(db_url, limits):
    """Floats that jsonb rewrites (-0.0, 1e16 and up, tiny exponents), big integers and any
    text: the chain the writer computed is the one a reader recomputes."""
    stream = f"prop-{uuid.uuid4().hex[:8]}"
    written(db_url, stream, [ev.LimitsChanged("main", limits, "ops", "test"), alert(1)])
    journal = Journal(db_url, stream)
    try:
        assert verify_chain(journal).broken is None
    finally:
        journal.close()


@pytest.mark.storage
def test_migration_0007_chains_the_events_written_before_it(empty_db_url):
    """A journal from before the chain (revision 0006), floats jsonb rewrites included, is
    chained in seq order by the upgrade, stream by stream, and verifies."""
    engine = sa.create_engine(sqlalchemy_url(empty_db_url), poolclass=sa.NullPool)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
    rows = [
        ("old-a", "risk_alert", None, '{"n": -0.0, "big": 1e16}'),
        ("old-b", "risk_alert", "k", '{"n": 1}'),
        ("old-a", "risk_alert", "x", '{"n": 2}'),
    ]
    with psycopg.connect(empty_db_url) as conn:
        for row in rows:
            conn.execute(
                "insert into runtime.events (stream, type, key, payload) values (%s, %s, %s, %s)",
                row,
            )
    migrate(empty_db_url)
    for stream, count in (("old-a", 2), ("old-b", 1)):
        journal = Journal(empty_db_url, stream)
        try:
            check = verify_chain(journal)
        finally:
            journal.close()
        assert check.broken is None and check.events == count
