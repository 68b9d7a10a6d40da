"""``qtis ingest --source alpaca``: a backfill from the stand-in market with the real alpaca-py
client, the keys taken from the environment (never argv); refused keys are one clear line."""

from __future__ import annotations

import json

from tests.support.alpaca import KEY, SECRET
from tests.support.cli import qtis
from tests.support.vendors import minute_bars, published, stored
from trading_runtime.alpaca.market import Market
from trading_runtime.alpaca.standin import StandIn


def test_ingest_backfills_from_alpaca(qtis_env, tmp_path):
    with StandIn(Market(minute_bars(6), timeframe="1Min"), KEY, SECRET) as standin:
        ingest_from(standin, qtis_env, tmp_path)


def ingest_from(standin: StandIn, qtis_env: str, tmp_path) -> None:
    for _ in range(4):
        standin.market.advance()
    env = {
        "QTIS_DATABASE_URL": qtis_env,
        "QTIS_HOME": str(tmp_path / ".qtis"),
        "QTIS_ALPACA_KEY_ID": KEY,
        "QTIS_ALPACA_SECRET_KEY": SECRET,
        "QTIS_ALPACA_DATA_URL": standin.url,
        "QTIS_VENDOR_FREQUENCY": "1min",
        "QTIS_VENDOR_BACKFILL_DAYS": "3650",
    }
    out = qtis("ingest", "--source", "alpaca", "--symbols", "AAA,BBB,CCC", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["inserted"] == 12
    assert stored(qtis_env) == published(standin.market)

    refused = qtis("ingest", "--source", "alpaca", "--symbols", "AAA",
                   env=env | {"QTIS_ALPACA_SECRET_KEY": "wrong-secret"})  # fmt: skip
    assert refused.returncode == 2
    assert "QTIS_ALPACA_SECRET_KEY" in refused.stderr and "wrong-secret" not in refused.stderr
