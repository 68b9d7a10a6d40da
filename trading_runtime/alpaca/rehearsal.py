"""A live session rehearsed against the local stand-in market: the market continues the stored
bars (``warehouse.providers.continuation``), the trading service runs as a real `qtis trade
live` process pointed at it (keys in its environment, never on its command line), and the
rehearsal moves the market's clock one bar at a time, waiting each time until the service has
journaled that bar - so a run is the same whatever the machine's speed. The demo, the live
benchmark and the end-to-end tests drive it; they can kill the service at any bar and start
it again."""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

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
KILL_POINTS = ("loaded", "sent", "random", "idle")  # where :meth:`Rehearsal.kill_at` can land


# a bar's bar_closed, with the client ids of the orders it sent that the broker did not reject
_BAR_DONE = """
select coalesce(array_agg(s.payload->'order'->>'client_id')
                filter (where s.seq is not null and r.seq is null), '{}')
  from runtime.events b
  left join runtime.events s
    on s.stream = b.stream and s.type = 'order_submitted'
   and s.payload->'step' = b.payload->'step'
  left join runtime.events r
    on r.stream = b.stream and r.type = 'order_rejected'
   and r.payload->>'client_id' = s.payload->'order'->>'client_id'
 where b.stream = %(stream)s and b.type = 'bar_closed' and b.payload->>'ts' = %(ts)s
 group by b.seq
"""


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
        amend: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> None:
        """``amend``: changes the continued bars before the market publishes them (a test adds
        a bar out of the session, say)."""
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
        if amend is not None:
            self.bars = amend(self.bars)
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

    def kill_at(self, point: str, rng: random.Random) -> None:
        """SIGKILL at ``point`` of a bar (one of ``KILL_POINTS``): as soon as the bar's load
        into the warehouse committed (its NOTIFY; the engine has probably not journaled it
        yet); as the first order of a bar reaches the broker (bars are published until one
        sends orders; the answers are not journaled yet); a random 0-300 ms after a bar is
        published; or between bars."""
        if point == "loaded":
            with BarListener(self.url) as listener:
                ts = self.market.advance()
                self._until(lambda: any(b.last >= ts for b in listener.wait(0.05)), "its load")
        elif point == "sent":
            self._until_sent()
        elif point == "random":
            self.market.advance()
            time.sleep(rng.uniform(0.0, 0.3))
        elif point == "idle":
            self.advance()
        else:
            raise ValueError(f"unknown kill point {point!r}: one of {KILL_POINTS}")
        self.kill()

    def _until_sent(self, bars: int = 20) -> None:
        for _ in range(bars):
            before = len(self.arrivals())
            ts = self.market.advance()
            self._until(
                lambda b=before, t=ts: len(self.arrivals()) > b or self.journaled(t),
                "orders or the bar",
            )
            if len(self.arrivals()) > before:
                return
        raise LookupError(f"{bars} bars and no order: nothing to kill the service after")

    def _until(self, done: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.process is not None and self.process.poll() is not None:
                raise ServiceDied(f"the service exited while waiting for {what}: see {self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:g} s for {what}: see {self.log}")
            time.sleep(0.002)

    def restart(self, timeout: float = 120.0) -> None:
        """Start the service again; returns once it has journaled the market's last bar."""
        self.start()
        if self.market.step >= 0:
            self.wait_for_bar(self.market.now, timeout)

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
        deadline = time.monotonic() + timeout
        while not self.journaled(ts):
            if self.process is not None and self.process.poll() is not None:
                raise ServiceDied(
                    f"the service exited ({self.process.returncode}) before it journaled the bar"
                    f" of {ts:%Y-%m-%d}: see {self.log}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the service did not journal the bar of {ts:%Y-%m-%d} in"
                                   f" {timeout:g} s: see {self.log}")  # fmt: skip
            time.sleep(0.02)

    def journaled(self, ts: datetime) -> bool:
        """Whether the service has journaled the bar of ``ts`` and its orders have reached the
        broker (or were rejected): the engine sends them after the journal commits, and an
        order that arrives after the next bar was published would fill a bar later."""
        with connect(self.url) as conn:
            row = conn.execute(_BAR_DONE, {"stream": self.stream, "ts": ts.isoformat()}).fetchone()
        if row is None:
            return False
        if not self.at_standin:
            return True
        at_broker = self.broker_orders()
        return all(cid in at_broker for cid in row[0])

    # --- what happened ------------------------------------------------------------------------

    def submitted(self) -> set[str]:
        """The client ids of every order the journal says was sent."""
        with connect(self.url) as conn:
            rows = conn.execute(
                "select payload->'order'->>'client_id' from runtime.events"
                " where stream = %s and type = 'order_submitted'",
                (self.stream,),
            ).fetchall()
        return {cid for (cid,) in rows}

    def events(self, kind: str) -> list[dict[str, Any]]:
        """The payloads of the stream's journaled events of type ``kind``, in journal order."""
        with connect(self.url) as conn:
            rows = conn.execute(
                "select payload from runtime.events where stream = %s and type = %s order by seq",
                (self.stream, kind),
            ).fetchall()
        return [row[0] for row in rows]

    def health(self) -> tuple[int, dict[str, Any]]:
        """The service's ``/healthz``: its HTTP status and answer (QTIS_LIVE_HEALTH_PORT must
        be in ``env``)."""
        url = self.health_url or f"http://127.0.0.1:{self.env()['QTIS_LIVE_HEALTH_PORT']}/healthz"
        try:
            with urlopen(url, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def broker_positions(self) -> dict[str, float]:
        """The broker's non-zero positions, by symbol."""
        with self.market.lock:
            held = self.market.desk.positions.items()
            return {s: p.quantity for s, p in held if p.quantity != 0}

    def audit(self) -> dict[str, Any]:
        """What a crash could have broken, journal against broker: orders journaled but never
        at the broker (``lost``), at the broker but not journaled, journaled or sent twice
        (the broker's 422s), orders whose fills differ, and whether the last reconciliation
        found the book equal to the broker. ``ok``: none of these."""
        sent = [p["order"]["client_id"] for p in self.events("order_submitted")]
        at_broker = self.broker_orders()
        filled: dict[str, float] = {}
        for payload in self.events("order_filled"):
            fill = payload["fill"]
            filled[fill["client_id"]] = filled.get(fill["client_id"], 0.0) + fill["quantity"]
        broker = {c: o.filled for c, o in at_broker.items() if o.filled}
        differ = [c for c in sorted(set(filled) | set(broker))
                  if abs(filled.get(c, 0.0) - broker.get(c, 0.0)) > 1e-6]  # fmt: skip
        reconciled = self.events("reconciled")
        found: dict[str, Any] = {
            "lost": sorted(set(sent) - set(at_broker)),
            "unjournaled": sorted(set(at_broker) - set(sent)),
            "journaled_twice": sorted(c for c in set(sent) if sent.count(c) > 1),
            "sent_twice": self.duplicates(),
            "fills_differ": differ,
        }
        matched = bool(reconciled) and bool(reconciled[-1]["matched"])
        return found | {
            "ok": matched and not any(found.values()),
            "reconciled_matched": matched,
            "orders": len(sent),
            "fills": len(self.events("order_filled")),
        }

    def duplicates(self) -> list[str]:
        """Client ids the broker received a second time (and refused: 422)."""
        with self.market.lock:
            return list(self.market.desk.duplicates)

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
