"""Prometheus metrics of a run equal what its journal says: equity and P&L per account, orders,
fills and denials by check, the tick-to-order histogram; and they are served over HTTP."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date

import httpx
import pytest

from monitoring.alerts import AlertSink
from monitoring.runtime_alerts import RuntimeAlerts
from monitoring.settings import AlertSettings
from tests.support.alerts import HOLD_LIMIT, Webhook, logged_keys
from trading_runtime import events as ev
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.runs import run
from trading_runtime.telemetry import RuntimeMetrics


def test_metrics_follow_the_journal_and_are_served(market):
    # 300 shares: IBM and MSFT stay under the cap, AAPL and GOOG (dearer) are denied
    strategy = StrategyConfig(signal="sma-cross", fast=5, slow=20, sizing="fixed", quantity=300,
                              limits={"max_position_notional": 100_000})  # fmt: skip
    config = RunConfig(mode="paper", stream="metered", strategies=[strategy],
                       start=date(2012, 1, 3))  # fmt: skip
    metrics = RuntimeMetrics("metered")
    result = run(market, config, observers=[metrics])
    journal = Journal(market, "metered")
    try:
        counts = Counter(e.type for e in journal.read())
        denied = Counter(e.check for e in journal.read(types=[ev.ORDER_DENIED]))
        timed = [e for e in journal.read(types=[ev.ORDER_ACCEPTED])
                 if e.tick_to_order_us is not None]  # fmt: skip
    finally:
        journal.close()
    value = metrics.registry.get_sample_value
    labels = {"stream": "metered", "account": "main"}
    account = result.book.accounts["main"]
    assert value("qtis_equity", labels) == pytest.approx(account.equity)
    assert value("qtis_pnl", labels) == pytest.approx(account.equity - account.initial)
    assert value("qtis_drawdown", labels) == pytest.approx(account.drawdown)
    assert value("qtis_risk_state", labels) == 0
    assert value("qtis_orders_total", labels) == counts[ev.ORDER_SUBMITTED] > 0
    assert value("qtis_fills_total", labels) == counts[ev.ORDER_FILLED] > 0
    assert denied and all(
        value("qtis_denials_total", labels | {"check": check}) == n for check, n in denied.items()
    )
    histogram = value("qtis_tick_to_order_seconds_count", {"stream": "metered"})
    assert histogram == len(timed) > 0
    assert value("qtis_tick_to_order_seconds_sum", {"stream": "metered"}) == pytest.approx(
        sum(e.tick_to_order_us for e in timed) / 1e6
    )
    port = metrics.serve(0)
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'qtis_equity{account="main",stream="metered"}' in page
    assert "qtis_tick_to_order_seconds_bucket" in page


def test_the_example_dashboard_and_scrape_config_ask_only_for_metrics_that_exist():
    import json
    import re
    from pathlib import Path

    import yaml

    deploy = Path(__file__).parents[2] / "deploy"
    dashboard = json.loads((deploy / "grafana" / "qtis-trading.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"qtis_[a-z_]+", target["expr"])
    }
    metrics = RuntimeMetrics("x")
    metrics.tick_to_order.labels("x").observe(0.01)
    served = {s.name for family in metrics.registry.collect() for s in family.samples}
    families = list(metrics.registry.collect())
    served |= {f.name + ("_total" if f.type == "counter" else "") for f in families}
    assert asked and asked <= served, asked - served
    scrape = yaml.safe_load((deploy / "prometheus.yml").read_text())
    assert {job["job_name"] for job in scrape["scrape_configs"]} == {"qtis-trading", "qtis-serving"}


def test_runtime_alerts_reach_the_sink_once_per_kind(market, tmp_path):
    """A run whose orders a limit keeps denying alerts once per check (not once per order);
    a halt is critical, a return to active is not an alert."""
    import json

    from trading_runtime.book import Book

    sink = AlertSink(AlertSettings(log_file=tmp_path / "alerts.jsonl"), tmp_path)
    alerts = RuntimeAlerts("alerted", sink)
    strategy = StrategyConfig(signal="sma-cross", fast=5, slow=20, sizing="fixed", quantity=300,
                              limits={"max_position_notional": 100_000})  # fmt: skip
    config = RunConfig(stream="alerted", strategies=[strategy], start=date(2012, 1, 3))
    result = run(market, config, observers=[alerts])
    assert result.denials.get("max_position_notional", 0) > 1
    for state in ("halted", "active"):
        event = ev.RiskStateChanged("main", state, "drawdown 21%", "risk")
        alerts.observe(event, Book())
    alerts.close()  # the queue's worker has written every alert
    sent = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [a["key"] for a in sent] == ["alerted/main:denied:max_position_notional",
                                        "alerted/main:state:halted"]  # fmt: skip
    assert sent[1]["severity"] == "critical" and "drawdown 21%" in sent[1]["message"]


def test_a_slow_webhook_does_not_hold_up_the_engine(market, tmp_path, caplog):
    """The webhook holds every answer until the run is over: an engine that waited for it (the
    alert sent inline) could only finish by sitting out the webhook's timeout, and would log a
    failure; this one finishes with its alerts still in flight, and they are delivered after."""
    strategy = StrategyConfig(signal="sma-cross", fast=5, slow=20, sizing="fixed", quantity=300,
                              limits={"max_position_notional": 100_000})  # fmt: skip
    config = RunConfig(stream="slowhook", strategies=[strategy], start=date(2012, 1, 3))
    log = tmp_path / "alerts.jsonl"
    with Webhook() as hook, caplog.at_level(logging.WARNING):
        hook.hold()
        settings = AlertSettings(log_file=log, webhook_url=hook.url, timeout=HOLD_LIMIT / 2)
        alerts = RuntimeAlerts("slowhook", AlertSink(settings, tmp_path))
        run(market, config, observers=[alerts])
        assert "alert webhook" not in caplog.text, caplog.text  # nobody sat out a timeout
        assert hook.answered == [] and alerts.queue.delivered == 0  # still in flight
        hook.release()
        alerts.close()
    assert alerts.queue.failed == 0 and alerts.queue.delivered == len(hook.answered) > 0
    assert [a["key"] for a in hook.answered] == logged_keys(log)
    assert "slowhook/main:denied:max_position_notional" in logged_keys(log)
