"""The demo's last word: one table of what the run found, read back from what it stored (the
warehouse, the training report, mlops.promotions, the backtest and walk-forward JSON, the drift
run), so every figure in it can be found again where it came from."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cli.render.format import num
from orchestration.assets.training import report_path
from registry import promotions
from training.evaluate import BASELINES
from training.settings import TrackingSettings
from warehouse import quality


def _value(interval: dict[str, Any] | None) -> float | None:
    return None if not interval else interval.get("value")


def _models_line(report: dict[str, Any]) -> str:
    """The best model and the best baseline by out-of-sample Sharpe after costs."""
    models = report["models"]

    def sharpe(name: str) -> float:
        value = _value(models[name]["trading"]["sharpe"])
        return -math.inf if value is None else value

    ours = max((n for n in models if n not in BASELINES), key=sharpe, default=None)
    base = max((n for n in models if n in BASELINES), key=sharpe, default=None)
    if ours is None:
        return "no model was evaluated"
    ic = _value(models[ours]["horizons"]["h1"]["ic"])
    line = f"best {ours}: Sharpe {num(sharpe(ours))}, IC h1 " + ("-" if ic is None else f"{ic:.3f}")
    if base is not None:
        line += f"; best baseline {base}: Sharpe {num(sharpe(base))}"
    return line + f" ({report['test_start'][:10]} to {report['test_end'][:10]}, after costs)"


def _backtest_line(reports: Path) -> str:
    rows = {}
    for path in sorted(reports.glob("backtest_*.json")):
        metrics = next(iter(json.loads(path.read_text())["metrics"].values()))
        rows[path.stem.removeprefix("backtest_")] = metrics
    if not rows:
        return "no backtest ran"
    shown = [n for n in ("champion", "buy_and_hold") if n in rows] or list(rows)[:2]
    return (
        "; ".join(
            f"{n}: return {rows[n]['total_return']:.2%}, Sharpe {num(rows[n]['sharpe'])}, max "
            f"drawdown {rows[n]['max_drawdown']:.2%}"
            for n in shown
        )
        + f" ({next(iter(rows.values()))['bars']} bars out of sample, after costs)"
    )


def _walk_forward_line(path: Path) -> str:
    if not path.exists():
        return "not run"
    found = json.loads(path.read_text())
    m, base = found["metrics"], (found.get("baseline") or {}).get("metrics") or {}
    line = f"stitched return {m['total_return']:.2%}, Sharpe {num(m['sharpe'])}"
    if base:
        line += f"; buy-and-hold {base['total_return']:.2%}, Sharpe {num(base['sharpe'])}"
    return line + f" ({len(found['windows'])} windows)"


def _promotion_line(status: dict[str, Any]) -> str:
    """The champion and the decision that installed it; the challenger."""
    champion, decisions = status["champion"], status["decisions"]
    if champion is None:
        return "no champion: no version passed the gates and none was forced"
    line = f"@champion {champion[0]} v{champion[1]}"
    mine = decisions[(decisions["model"] == champion[0]) & (decisions["version"] == champion[1])]
    if len(mine):
        reason = str(mine.iloc[0]["reason"])
        line += f" ({mine.iloc[0]['decision']}: {reason[:140]}{'...' if len(reason) > 140 else ''})"
    if status["challenger"]:
        line += f"; @challenger {status['challenger'][0]} v{status['challenger'][1]}"
    return line


def _drift_line(report) -> str:
    if report is None:
        return "not checked"
    state = ", ".join(
        f"{kind} {'[red]drifted[/]' if report.drifted(kind) else '[green]stable[/]'}"
        for kind in ("data", "prediction", "performance", "attribution")
        if any(m.kind == kind for m in report.measures)
    )
    return f"{report.model} v{report.version}: {state}"


def print_summary(
    console: Console,
    url: str,
    home: Path,
    drift,
    where: list[tuple[str, str]],
    tracking: TrackingSettings,
):
    """``drift``: the demo's DriftReport (or None); ``where``: (what, how to open it) rows;
    ``tracking``: the MLflow store whose aliases are shown."""
    s = quality.summary(url)
    table = Table("", "", title="Summary", show_header=False, title_justify="left")
    table.add_row(
        "data",
        f"{s.symbols} symbols, {s.bars:,} bars, {s.first_ts:%Y-%m-%d} to {s.last_ts:%Y-%m-%d}; "
        f"{s.quarantined:,} rows quarantined",
    )
    evaluation = report_path(home, "ensemble")
    if evaluation.exists():
        table.add_row("models (OOS)", _models_line(json.loads(evaluation.read_text())))
    status = promotions.status(url, limit=20, tracking=tracking)
    table.add_row("promotion", _promotion_line(status))
    table.add_row("backtest", _backtest_line(home / "reports"))
    table.add_row("walk-forward", _walk_forward_line(home / "reports" / "walkforward.json"))
    table.add_row("drift", _drift_line(drift))
    for what, how in where:
        table.add_row(what, how)
    console.print(table)
