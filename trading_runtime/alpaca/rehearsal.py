"""A live session rehearsed against the local stand-in market: the market continues the stored
bars (``warehouse.providers.continuation``), the trading service runs as a real `qtis trade
live` process pointed at it (keys in its environment, never on its command line), and the
rehearsal moves the market's clock one bar at a time, waiting each time until the service has
journaled that bar - so a run is the same whatever the machine's speed. The demo, the live
benchmark and the end-to-end tests drive it; they can kill the service at any bar and start
it again."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from trading_runtime.alpaca.market import Market
from trading_runtime.alpaca.standin import StandIn
from trading_runtime.domain import Order
from trading_runtime.events import stamp
from trading_runtime.instruments import Instrument
from trading_runtime.settings import CostModel
from warehouse.announce import BarListener
from warehouse.db import connect
from warehouse.ingest import ingest
from warehouse.providers.base import FrameProvider, RawBars
from warehouse.providers.continuation import continuation
from warehouse.reads import read_bars
from warehouse.settings import WarehouseSettings

HISTORY_DAYS = 300  # of stored bars the continuation draws its days from
READY = re.compile(r"live: (http://\S+)/healthz")  # what `qtis trade live` prints once up


class ServiceDied(RuntimeError):
    """The service exited while the rehearsal waited for it; its log says why."""


class Rehearsal:
    """The stand-in market over ``count`` new bars of ``symbols`` and a `qtis trade live`
    process for ``stream`` with ``args``. Use as a context manager (the market serves while
    it is open); :meth:`start` the service, :meth:`advance` bar by bar, :meth:`kill` or
    :meth:`stop` it."""

    def __init__(
        self,
        url: str,
        symbols: Sequence[str],
        count: int,
        stream: str,
        args: Sequence[str],
        home: Path,
        costs: CostModel | None = None,
        env: dict[str, str] | None = None,
        seed: int = 0,
        cash: float = 1_000_000.0,
    ) -> None:
        self.url, self.stream, self.args, self.home = url, stream, list(args), home
        options = dict(zip(self.args, [*self.args[1:], ""], strict=True))
        # --feed warehouse: the rehearsal loads each bar itself, as another process would;
        # --broker sim: the orders stay in the service (its simulated venue), not at the stand-in
        self.loads_bars = options.get("--feed", "warehouse") == "warehouse"
        self.at_standin = options.get("--broker", "sim") == "alpaca"
        history = read_bars(url, list(symbols)).to_pandas()
        last = history.groupby("symbol")["ts"].transform("max").min()
        recent = history[history["ts"] >= history["ts"].max() - pd.Timedelta(days=HISTORY_DAYS)]
        self.bars = continuation(recent[recent["ts"] <= last], count, seed)
        instruments = {s: Instrument(s) for s in symbols}
        self.market = Market(self.bars, costs or CostModel(), instruments, cash)
        self.times: list[datetime] = list(self.market.times)
        self.key, self.secret = "rehearsal", secrets.token_hex(16)
        self.standin = StandIn(self.market, self.key, self.secret)
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.health_url: str | None = None
        self.starts = 0
        self.log = home / "logs" / f"live-{stream}.log"
        self.committed: dict[datetime, float] = {}  # bar time -> when its load committed
        self._listening = threading.Event()
        self._done = threading.Event()
        self._listener = threading.Thread(target=self._listen, name="rehearsal-notify", daemon=True)

    def __enter__(self) -> Rehearsal:
        self._listener.start()
        self._listening.wait(30)
        self.standin.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
        self.standin.close()
        self._done.set()
        self._listener.join(10)

    def _listen(self) -> None:
        """Record when each new bar's load committed (the ``qtis_bars`` announcements)."""
        with BarListener(self.url) as listener:
            self._listening.set()
            while not self._done.is_set():
                for load in listener.wait(0.2):
                    self.committed.setdefault(load.last.astimezone(UTC), load.committed_at)

    # --- the service --------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The service's environment: this one, the database, and the stand-in's URLs and keys
        (secrets travel in the environment, never in argv)."""
        s = self.standin
        return (
            os.environ
            | {
                "QTIS_DATABASE_URL": self.url,
                "QTIS_HOME": str(self.home),
                "QTIS_ALPACA_KEY_ID": self.key,
                "QTIS_ALPACA_SECRET_KEY": self.secret,
                "QTIS_ALPACA_TRADING_URL": s.url,
                "QTIS_ALPACA_DATA_URL": s.url,
                "QTIS_ALPACA_STREAM_URL": s.stream_url,
                "QTIS_ALPACA_DATA_STREAM_URL": s.data_stream_url,
                "QTIS_VENDOR_FREQUENCY": "1d",
            }
            | self.extra_env
        )

    def start(self, timeout: float = 120.0) -> subprocess.Popen:
        """Start (or restart) the service; returns once it is up: its feed listens, its
        ``/healthz`` answers (the URL is then in ``health_url``)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "cli.app", "trade", "live", "--stream", self.stream]
        with self.log.open("a") as log:
            log.write(f"\n--- start {self.starts + 1} at {time.time():.3f}\n")
        offset = self.log.stat().st_size
        self.process = subprocess.Popen(
            command + self.args,
            env=self.env(),
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while (found := READY.search(self.log.read_text()[offset:])) is None:
            if self.process.poll() is not None:
                raise ServiceDied(f"the service exited ({self.process.returncode}) while"
                                  f" starting: see {self.log}")  # fmt: skip
            if time.monotonic() > deadline:
                raise TimeoutError(f"the service did not start in {timeout:g} s: see {self.log}")
            time.sleep(0.05)
        self.health_url = found.group(1) + "/healthz"
        return self.process

    def kill(self) -> None:
        """SIGKILL: no journal flush, no goodbye to the broker."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as systemd stops it; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    # --- the market clock -------------------------------------------------------------------

    def advance(self, timeout: float = 120.0) -> datetime:
        """Publish the next bar and wait until the service has journaled it (its bar_closed);
        returns the bar's time."""
        ts = self.market.advance()
        if ts is None:
            raise LookupError("the rehearsal's market has no bar left")
        if self.loads_bars:
            frame = self.bars[self.bars["ts"] == ts].reset_index(drop=True)
            raw = RawBars(frame, "rehearsal", "the stand-in market", [])
            ingest(FrameProvider(raw, raw.source), self.url, WarehouseSettings())
        self.wait_for_bar(ts, timeout)
        return ts

    def wait_for_bar(self, ts: datetime, timeout: float) -> None:
        """Until the service has journaled the bar of ``ts`` and the broker has every order
        the journal sent so far (the bar's orders must be at the broker before the next bar
        opens, or they would fill a bar later than a replay fills them)."""
        deadline = time.monotonic() + timeout
        while not (
            self.journaled(ts) and (not self.at_standin or self.submitted() <= set(self.arrivals()))
        ):
            if self.process is not None and self.process.poll() is not None:
                raise ServiceDied(
                    f"the service exited ({self.process.returncode}) before it traded the bar"
                    f" of {ts:%Y-%m-%d}: see {self.log}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the service did not trade the bar of {ts:%Y-%m-%d} in"
                                   f" {timeout:g} s: see {self.log}")  # fmt: skip
            time.sleep(0.02)

    def journaled(self, ts: datetime) -> bool:
        with connect(self.url) as conn:
            row = conn.execute(
                "select 1 from runtime.events where stream = %s and type = 'bar_closed'"
                " and payload->>'ts' = %s limit 1",
                (self.stream, ts.isoformat()),
            ).fetchone()
        return row is not None

    def submitted(self) -> set[str]:
        """The client ids of every order the journal says was sent."""
        with connect(self.url) as conn:
            rows = conn.execute(
                "select payload->'order'->>'client_id' from runtime.events"
                " where stream = %s and type = 'order_submitted'",
                (self.stream,),
            ).fetchall()
        return {cid for (cid,) in rows}

    # --- what happened ------------------------------------------------------------------------

    def broker_orders(self) -> dict[str, Order]:
        """Every order the broker received, in its latest state, by client id."""
        with self.market.lock:
            return dict(self.market.desk.orders)

    def arrivals(self) -> dict[str, float]:
        """When (epoch seconds) each order reached the broker, by client id."""
        with self.market.lock:
            return dict(self.market.desk.arrived)

    def bar_to_order(self) -> dict[str, float]:
        """Seconds from the commit of the load of the bar an order was decided on to the
        broker receiving it, by client id (orders whose bar's commit was seen)."""
        stamps = {stamp(ts): at for ts, at in self.committed.items()}
        out = {}
        for cid, arrived in self.arrivals().items():
            parts = cid.split("-")
            if len(parts) >= 3 and parts[1] in stamps:
                out[cid] = arrived - stamps[parts[1]]
        return out
