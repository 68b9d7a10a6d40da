"""`qtis train --fine-tune`: the pre-trained network against its fine-tuned variant on the same
test bars (from the report's ``fine_tuning`` section and model entries)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Column, Table


def _ic(model: dict[str, Any], h: str) -> str:
    ic = model["horizons"][h]["ic"]
    return "-" if not ic or ic.get("value") is None else f"{ic['value']:.3f}"


def print_fine_tuning(console: Console, report: dict[str, Any]) -> None:
    models = report["models"]
    for family, section in report["fine_tuning"].items():
        pre, post = models[section["pretrained"]], models[section["fine_tuned"]]
        table = Table(
            Column("horizon", no_wrap=True), "IC pre-trained", "IC fine-tuned", "DM statistic",
            "p (fine-tuned better)", "bars",
            title=f"{family}: pre-trained vs fine-tuned per {section['group']} "
            f"({section['steps']} steps, lr {section['lr']:g}), same test bars; DM on squared "
            "errors, one-sided",
        )  # fmt: skip
        for h, test in section["diebold_mariano"].items():
            if "error" in test:
                table.add_row(h, _ic(pre, h), _ic(post, h), "-", test["error"], "-")
                continue
            table.add_row(
                h, _ic(pre, h), _ic(post, h), f"{test['statistic']:.2f}",
                f"{test['p_value']:.3f}", str(test["n"]),
            )  # fmt: skip
        console.print(table)
        kept = sorted(
            {g for fold in section["folds"] for g, d in fold.items() if not d["fine_tuned"]}
        )
        if kept:
            console.print(f"kept the pre-trained weights in some fold: {', '.join(kept)}")
        sharpe = (pre["trading"]["sharpe"]["value"], post["trading"]["sharpe"]["value"])
        if None not in sharpe:
            console.print(f"Sharpe after costs: {sharpe[0]:.2f} pre-trained, {sharpe[1]:.2f} "
                          "fine-tuned (intervals in the table above)")  # fmt: skip
        console.print(section["verdict"])
