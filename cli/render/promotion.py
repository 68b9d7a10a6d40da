"""Promotion decisions as a table: each gate's verdict and number, the PBO, the reason."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from cli.common import console

GATE_ORDER = ("beats_champion", "deflated_sharpe", "beats_baselines", "servable")


def _cell(gate: dict[str, Any] | None) -> str:
    if gate is None:
        return "-"
    mark = {True: "[green]pass[/]", False: "[red]fail[/]", None: "[dim]n/a[/]"}[gate["passed"]]
    value = gate.get("value")
    return mark if value is None else f"{mark} {value:.3g}"


def decisions_table(title: str, decisions: list[dict[str, Any]]) -> Table:
    """One row per decision: each gate's verdict and number, the PBO, the reason."""
    table = Table(
        "model", "decision", "vs champion (p)", "deflated SR", "vs baselines (SR)",
        "p99 ms", "PBO", "why", title=title,
        caption="pass/fail and the gate's number; n/a = not applicable (e.g. no champion yet)",
    )  # fmt: skip
    styles = {"promoted": "green", "forced": "yellow", "challenger": "cyan", "rolled_back": "cyan"}
    for d in decisions:
        gates = {g["name"]: g for g in d["gates"]}
        pbo = gates.get("backtest_overfitting", {}).get("value")
        style = styles.get(d["decision"], "red")
        table.add_row(
            f"{d['model']} v{d['version']}",
            f"[{style}]{d['decision']}[/]",
            *(_cell(gates.get(name)) for name in GATE_ORDER),
            "-" if pbo is None else f"{pbo:.2f}",
            _short(d),
        )
    return table


def _short(decision: dict[str, Any]) -> str:
    failed = [g["name"] for g in decision["gates"] if g["passed"] is False]
    if decision["decision"] in ("promoted", "rolled_back") or not failed:
        return decision["reason"]
    return "failed " + ", ".join(failed)


def print_decisions(
    title: str, decisions: list[dict[str, Any]], out: Console | None = None
) -> None:
    """The table, then each decision's full reason."""
    out = out or console
    out.print(decisions_table(title, decisions))
    for d in decisions:
        out.print(f"  {d['model']} v{d['version']} {d['decision']}: {d['reason']}")
