"""The demo's promotion and serving part: the gates' decisions, then the real BentoML service
started on a free port, a few requests (good and bad) sent through the Python client and raw
HTTP, the answers printed, and the service stopped."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from cli.render.promotion import print_decisions
from registry import aliases, promotions
from serving.client import ServingClient, ServingError
from serving.launch import service_command, service_env
from serving.probe import serving_probe
from serving.schemas import ExplainRequest, PredictRequest
from serving.windows import WindowSource
from training.settings import PromotionSettings, TrackingSettings
from warehouse.db import connect

DEMO_OVERRIDE = (
    "demo: no version passed every gate; the best servable one by out-of-sample Sharpe is "
    "forced so that the API can be shown"
)


def print_promotion(
    console: Console, result, url: str, tracking: TrackingSettings
) -> tuple[str, str] | None:
    """The promotion asset's decisions; with no champion after them, the demo's recorded
    override. Returns the champion."""
    meta = result.asset_materializations_for_node("promotion")[0].metadata
    made = sum(1 for key in meta if key.endswith("_decision"))  # this run's decisions
    decisions = promotions.as_decisions(promotions.history(url, limit=made)) if made else []
    found = promotions.status(url, limit=0, tracking=tracking)
    current = found["champion"]
    if decisions:
        print_decisions(
            "Promotion gates (asset promotion, mlops.promotions): challenger vs champion and "
            "baselines on the same out-of-sample bars",
            decisions,
            console,
        )
    if current is not None:
        console.print(f"[bold]@champion[/]: {current[0]} v{current[1]}")
        return current
    servable = [
        d for d in decisions if any(g["name"] == "servable" and g["passed"] for g in d["gates"])
    ]
    if not servable:
        console.print("[red]No version is servable: the service is not started.[/]")
        return None
    ranked = sorted(servable, key=_sharpe, reverse=True)
    pick = ranked[0]
    probe, gates = serving_probe(url, tracking=tracking), PromotionSettings()
    aliases.force(
        url,
        pick["model"],
        pick["version"],
        DEMO_OVERRIDE,
        probe,
        gates,
        actor="demo",
        tracking=tracking,
    )
    console.print(
        f"[yellow]No version passed every gate[/], so nothing would serve. To show the API the "
        f"demo forces {pick['model']} v{pick['version']} (best out-of-sample Sharpe among the "
        "servable ones); the override is recorded as 'forced' with its reason and failed gates "
        "(qtis models status)."
    )
    if len(ranked) > 1:  # the runner-up faces the gates again, now against a champion
        runner_up = [(ranked[1]["model"], ranked[1]["version"])]
        [second] = aliases.promote(url, probe, gates, runner_up, tracking=tracking)
        test = second.gate("beats_champion")
        console.print(
            f"  {second.model} v{second.version} judged against it: {second.decision}"
            + (f" ({test.detail})" if test is not None else "")
        )
    return pick["model"], pick["version"]


def _sharpe(decision: dict) -> float:
    gate = next(g for g in decision["gates"] if g["name"] == "beats_baselines")
    return gate["value"] if gate["value"] is not None else -1e9


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def show_serving(console: Console, url: str, log_path: Path) -> None:
    """Start the service, send requests, print the answers, stop it."""
    port = _free_port()
    env = service_env() | {"QTIS_SERVE_RELOAD_SECONDS": "0"}
    command = service_command("127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with console.status(f"starting the BentoML service on {base}"):
            started = time.monotonic()
            while not _ready(base):
                if process.poll() is not None or time.monotonic() - started > 120:
                    console.print(f"[red]the service did not start[/]; its log: {log_path}")
                    return
                time.sleep(0.3)
        console.print(
            f"[bold]Serving[/] (qtis serve): BentoML up on {base} in "
            f"{time.monotonic() - started:.1f} s; OpenAPI {base}/docs.json, Swagger UI {base}/"
        )
        _exercise(console, url, base)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    console.print(f"  service stopped; its log: {log_path}")


def _exercise(console: Console, url: str, base: str) -> None:
    """The requests the demo sends to the running service, and what came back."""
    with ServingClient(base, timeout=30) as client:
        info = client.info()
        symbols = sorted(WindowSource(url, info.champion.features).known())
        answer = client.predict(PredictRequest(symbols=symbols))
        table = Table(
            "symbol", "as of", *(f"h{h}" for h in answer.horizons),
            title=f"POST /predict {{symbols}} -> {answer.model} v{answer.version} "
            f"({answer.role}); forward log returns",
        )  # fmt: skip
        for symbol, when, row in zip(answer.symbols, answer.as_of, answer.predictions, strict=True):
            table.add_row(symbol, f"{when:%Y-%m-%d}", *(f"{v:+.5f}" for v in row))
        console.print(table)
        console.print(
            f"  GET /model: champion {info.champion.model} v{info.champion.version} "
            f"(window {info.champion.window}, {len(info.champion.features)} features), "
            f"challenger "
            + (f"{info.challenger.model} v{info.challenger.version} in shadow"
               if info.challenger else "none")
            + f"; promotion: {(info.promotion or {}).get('decision', '-')}"
        )  # fmt: skip
        try:
            why = client.explain(ExplainRequest(symbol=symbols[0]))
            top = ", ".join(f"{a.feature} {a.shap[0]:+.2e}" for a in why.attributions[:4])
            console.print(f"  POST /explain {symbols[0]} ({why.method} SHAP, h1): {top}")
        except ServingError as exc:
            console.print(f"  POST /explain: {exc}")
        timings = []
        for _ in range(50):
            t0 = time.perf_counter()
            client.predict(PredictRequest(symbols=symbols[:1]))
            timings.append((time.perf_counter() - t0) * 1e3)
        timings.sort()
        console.print(
            f"  50 single-symbol requests (warehouse lookup included): median "
            f"{timings[25]:.1f} ms, max {timings[-1]:.1f} ms (bench/serving.py measures p99)"
        )
        shadow = _logged(url, answer.request_id)
        if shadow:
            console.print(
                "  mlops.prediction_log for that request: "
                + "; ".join(f"{role} {model} v{version} ({'served' if served else 'shadow'})"
                            for role, served, model, version in shadow)
            )  # fmt: skip
        for body, label in (
            ({"request": {"symbols": ["NOPE"]}}, "unknown symbol"),
            ({"request": {"windows": [[[1.0, 2.0]]]}}, "wrong feature count"),
            ({"request": {"windowz": []}}, "misspelt field"),
        ):
            bad = httpx.post(base + "/predict", json=body, timeout=10)
            console.print(f"  bad request ({label}): {bad.status_code} {bad.json()['error']}")


def _logged(url: str, request_id: str) -> list[tuple]:
    """The prediction-log rows of one request (written in the background: wait for them)."""
    rows: list[tuple] = []
    for _ in range(20):
        with connect(url) as conn:
            rows = conn.execute(
                "select role, served, model, version from mlops.prediction_log"
                " where request_id = %s order by served desc",
                (request_id,),
            ).fetchall()
        if len(rows) > 1:
            break
        time.sleep(0.1)
    return rows


def _ready(base: str) -> bool:
    try:
        return httpx.get(base + "/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
