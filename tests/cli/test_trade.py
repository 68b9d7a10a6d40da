"""``qtis trade``: backtests with their JSON, clear refusals of bad options, and the operator's
commands against a running paper engine (kill switch) and a stopped one."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time

import psycopg
import pytest
from typer.testing import CliRunner

from cli.app import app
from trading_runtime.chaos import events


@pytest.fixture
def trade(market, tmp_path):
    env = {"QTIS_DATABASE_URL": market, "QTIS_HOME": str(tmp_path / ".qtis")}
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["trade", *args], env=env)

    invoke.env = env
    return invoke


def test_backtest_prints_metrics_and_writes_json(trade, tmp_path):
    out = tmp_path / "bt.json"
    result = trade(
        "backtest",
        "--signal",
        "sma-cross",
        "--fast",
        "5",
        "--slow",
        "20",
        "--start",
        "2011-01-03",
        "--stream",
        "cli-bt",
        "--json-out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "Sharpe" in result.output and "max drawdown" in result.output
    written = json.loads(out.read_text())
    assert {"metrics", "fills", "equity_curve"} <= set(written)
    assert written["fills"] and written["equity_curve"][-1]["ts"].startswith("2013-")
    again = trade("backtest", "--stream", "cli-bt")
    assert again.exit_code == 2 and "already exists" in again.output


def test_a_pairs_backtest_from_the_command_line(trade):
    pairs = ["--signal", "pairs", "--sizing", "equal", "--limit", "allow_short=true"]
    result = trade("backtest", *pairs, "--start", "2009-06-01", "--stream", "cli-pairs")
    assert result.exit_code == 0, result.output
    assert "cli-pairs" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fast", "30", "--slow", "10"], "fast < slow"),
        (["--limit", "bogus=1"], "NAME one of max_order_notional"),
        (["--symbols", "NOPE"], "unknown symbols NOPE"),
        (["--signal", "coin-flip"], "signal"),
        (["--start", "2030-01-01"], "no bars on or after 2030-01-01"),
        (["--signal", "pairs", "--limit", "allow_short=true"], "use sizing equal"),
        (["--signal", "pairs", "--sizing", "equal"], "add allow_short: true to limits"),
    ],
)
def test_bad_options_are_refused_with_the_reason(trade, args, message):
    result = trade("backtest", *args)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


@pytest.mark.slow
def test_kill_switch_on_a_running_engine_then_resume(trade, market):
    command = [
        sys.executable,
        "-m",
        "cli.app",
        "trade",
        "paper",
        "--stream",
        "live",
        "--signal",
        "sma-cross",
        "--fast",
        "2",
        "--slow",
        "4",
        "--sizing",
        "fixed",
        "--start",
        "2012-06-01",
        "--bars-per-second",
        "10",
    ]
    engine = subprocess.Popen(
        command,
        env=os.environ | trade.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while events(market, "live") < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        halted = trade("halt", "--stream", "live", "--reason", "fat finger", "--actor", "ops")
        assert halted.exit_code == 0, halted.output
        assert "waiting for the running engine" in halted.output
        assert "halted (halted by ops: fat finger)" in halted.output
        status = trade("status", "--stream", "live")
        assert "halted" in status.output
    finally:
        engine.kill()
        engine.wait()
    resumed = trade("resume", "--stream", "live", "--reason", "checked", "--actor", "ops")
    assert resumed.exit_code == 0 and "active (resumed by ops: checked)" in resumed.output
    assert "fat finger" not in trade("status", "--stream", "live").output
    orders = trade("orders", "--stream", "live", "--last", "5")
    assert orders.exit_code == 0 and "client id" in orders.output
    replay = trade("replay", "--stream", "live")
    assert replay.exit_code == 0 and "sent once each" in replay.output, replay.output
    assert "mismatch" not in replay.output
    assert "live" in trade("runs").output
    refused = trade("halt", "--stream", "live", "--reason", " ")
    assert refused.exit_code == 2 and "needs a reason" in refused.output


def test_a_bad_operator_command_exits_2_with_the_reason_and_journals_nothing(trade, market):
    started = trade("paper", "--stream", "ops-cli", "--signal", "sma-cross", "--fast", "2",
                    "--slow", "4", "--start", "2012-10-01")  # fmt: skip
    assert started.exit_code == 0, started.output
    before = events(market, "ops-cli")
    for args, message in [
        (["limits", "--set", "max_position_notional=-5"],
         "limit max_position_notional=-5 refused: Input should be greater than 0"),
        (["limits", "--set", "allow_short=maybe"], "limit allow_short='maybe' refused"),
        (["halt", "--account", "nobody"], "no sub-account 'nobody' (have main)"),
    ]:  # fmt: skip
        refused = trade(*args, "--stream", "ops-cli", "--reason", "check")
        assert refused.exit_code == 2 and message in refused.output, refused.output
    assert events(market, "ops-cli") == before
    typed = trade("limits", "--set", "max_position_notional=1e5", "--stream", "ops-cli",
                  "--reason", "tighten")  # fmt: skip
    assert typed.exit_code == 0 and "{'max_position_notional': 100000.0}" in typed.output


def backtest(trade, stream: str) -> None:
    result = trade(
        "backtest", "--signal", "sma-cross", "--fast", "5", "--slow", "20", "--sizing", "fixed",
        "--start", "2012-01-03", "--end", "2012-04-02", "--stream", stream,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def seqs(url: str, stream: str, type_: str | None = None) -> list[int]:
    """The seqs of the stream's events (of one type), in order."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select seq from runtime.events where stream = %s and (%s::text is null or type = %s)"
            " order by seq",
            (stream, type_, type_),
        )
        return [seq for (seq,) in rows.fetchall()]


def as_superuser_without_triggers(url: str, statement: str, seq: int) -> None:
    """What someone with the database's superuser can still do: switch the append-only
    triggers off for a transaction and change the journal."""
    with psycopg.connect(url) as conn:
        conn.execute("set local session_replication_role = replica")
        conn.execute(statement, (seq,))


def test_replay_reports_the_first_broken_link_of_the_chain(trade, market):
    backtest(trade, "tampered")
    intact = trade("replay", "--stream", "tampered")
    assert intact.exit_code == 0 and "hash chain of" in intact.output, intact.output
    first_fill, later_fill = seqs(market, "tampered", "order_filled")[:2]
    edit = "update runtime.events set payload = jsonb_set(payload, '{fill,price}', '1.0')"
    as_superuser_without_triggers(market, edit + " where seq = %s", later_fill)
    as_superuser_without_triggers(market, edit + " where seq = %s", first_fill)
    edited = trade("replay", "--stream", "tampered")
    assert edited.exit_code == 1
    assert f"chain broken at seq {first_fill} (order_filled)" in edited.output, edited.output
    assert f"seq {later_fill}" not in edited.output  # the first broken link only

    backtest(trade, "trimmed")
    bars = seqs(market, "trimmed", "bar_closed")
    as_superuser_without_triggers(
        market, "delete from runtime.events where seq = %s", bars[len(bars) // 2]
    )
    after = min(s for s in seqs(market, "trimmed") if s > bars[len(bars) // 2])
    trimmed = trade("replay", "--stream", "trimmed")
    assert trimmed.exit_code == 1
    assert f"chain broken at seq {after}: it was not written after" in trimmed.output


def test_audit_exports_each_order_with_its_decision_risk_checks_and_fills(trade, market, tmp_path):
    result = trade(
        "backtest", "--signal", "sma-cross", "--fast", "5", "--slow", "20", "--sizing", "fixed",
        "--start", "2012-01-03", "--end", "2012-04-02", "--stream", "audited-cli",
        "--limit", "max_symbol_weight=0.01",  # 100 GOOG or IBM are more: denied
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    as_json, as_csv = tmp_path / "trail.json", tmp_path / "trail.csv"
    exported = trade(
        "audit", "--stream", "audited-cli", "--format", "json", "--output", str(as_json)
    )
    assert exported.exit_code == 0, exported.output
    orders = json.loads(as_json.read_text())
    decided = seqs(market, "audited-cli", "order_submitted")
    denied = seqs(market, "audited-cli", "order_denied")
    assert len(orders) == len(decided) + len(denied) > 0
    assert sorted(o["journal"]["seq"] for o in orders) == sorted(decided + denied)
    for order in orders:
        assert order["decision"]["signal"] == "sma-cross" and order["model"] is None
        assert order["risk"]["limits"]["max_symbol_weight"] == 0.01
        if order["risk"]["result"] == "denied":
            assert order["symbol"] in {"GOOG", "IBM"} and order["fills"] == []
            assert order["risk"]["check"] and order["status"] == "denied"
        else:
            assert order["symbol"] in {"AAPL", "MSFT"} and order["risk"]["check"] is None
            assert sum(f["quantity"] for f in order["fills"]) == order["quantity"]
    assert {o["risk"]["result"] for o in orders} == {"passed", "denied"}

    exported = trade("audit", "--stream", "audited-cli", "--output", str(as_csv))  # CSV: default
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(as_csv.open()))
    assert [r["client_id"] for r in rows] == [o["client_id"] for o in orders]
    assert {"model", "version", "artifact_sha256", "forecast", "risk_check", "fills",
            "filled_quantity", "event_hash"} <= set(rows[0])  # fmt: skip
    assert all(float(r["filled_quantity"] or 0) == sum(f["quantity"] for f in o["fills"])
               for r, o in zip(rows, orders, strict=True))  # fmt: skip

    as_superuser_without_triggers(
        market, "delete from runtime.events where seq = %s", seqs(market, "audited-cli")[3]
    )
    refused = trade("audit", "--stream", "audited-cli", "--output", str(as_csv))
    assert refused.exit_code == 1 and "chain broken at seq" in refused.output
