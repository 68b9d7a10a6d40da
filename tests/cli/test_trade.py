"""``qtis trade``: backtests with their JSON, clear refusals of bad options, and the operator's
commands against a running paper engine (kill switch) and a stopped one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fast", "30", "--slow", "10"], "fast < slow"),
        (["--limit", "bogus=1"], "NAME one of max_order_notional"),
        (["--symbols", "NOPE"], "unknown symbols NOPE"),
        (["--signal", "coin-flip"], "signal"),
        (["--start", "2030-01-01"], "no bars on or after 2030-01-01"),
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
