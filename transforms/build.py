"""Build the feature store outside Dagster (`qtis features build`): the same steps as the feature
assets - GARCH volatility, then dbt build with its tests - with a full refresh when the history
of a symbol changed since the last build."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from transforms import store
from transforms.dbt_runner import BuildReport, build, ensure_manifest
from transforms.garch import GarchReport, update_garch


@dataclass
class FeatureBuild:
    garch: GarchReport
    dbt: BuildReport


class BuildProgress(Protocol):
    """What a build reports as it goes (the CLI draws progress bars from it)."""

    def rewritten(self, symbols: list[str]) -> None:
        """The symbols whose history changed: the build is a full refresh."""

    def garch_symbol(self, message: str) -> None:
        """One symbol's GARCH fits are done."""

    def garch_done(self, symbols: int) -> None:
        """Every symbol's GARCH fits are done."""

    def dbt_started(self, nodes: int | None) -> None:
        """dbt starts on this many models, seeds and tests (None: a selection, not counted)."""

    def dbt_node(self, name: str, status: str) -> None:
        """A dbt node started (``status`` "started") or finished."""


class Silent:
    """A build that reports nothing."""

    def rewritten(self, symbols: list[str]) -> None:
        pass

    def garch_symbol(self, message: str) -> None:
        pass

    def garch_done(self, symbols: int) -> None:
        pass

    def dbt_started(self, nodes: int | None) -> None:
        pass

    def dbt_node(self, name: str, status: str) -> None:
        pass


def dbt_node_count(select: str | None) -> int | None:
    """Models, seeds and tests of the whole project; None for a selection."""
    if select:
        return None
    manifest = json.loads(ensure_manifest().read_text())
    kinds = ("model", "seed", "test")
    return sum(1 for n in manifest["nodes"].values() if n["resource_type"] in kinds)


def build_features(
    url: str,
    progress: BuildProgress | None = None,
    *,
    full_refresh: bool = False,
    select: str | None = None,
) -> FeatureBuild:
    progress = progress or Silent()
    rewritten = [] if full_refresh else store.rewritten_history(url)
    if rewritten:
        progress.rewritten(rewritten)
        full_refresh = True
    garch = update_garch(url, full_refresh=full_refresh, progress=progress.garch_symbol)
    progress.garch_done(len(garch.symbols))
    progress.dbt_started(dbt_node_count(select))
    # series dated in the past reach rows bar_features holds: its rebuild, not GARCH's
    again = full_refresh or store.series_stale(url)
    dbt = build(url, full_refresh=again, select=select, on_node=progress.dbt_node)
    return FeatureBuild(garch=garch, dbt=dbt)
