"""Materializing assets from plain Python (the demo) into the instance at ``DAGSTER_HOME``, so
each run shows in the Dagster UI like one the daemon launched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import DagsterInstance, ExecuteInProcessResult, materialize


def run_assets(
    assets: Sequence[Any],
    resources: Mapping[str, Any],
    ops: Mapping[str, Any] | None = None,
    log_level: str = "WARNING",
    raise_on_error: bool = True,
) -> ExecuteInProcessResult:
    """One run of ``assets`` (and their checks) with ``ops`` config, logging at ``log_level``."""
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if ops:
        run_config["ops"] = dict(ops)
    return materialize(
        assets,
        resources=dict(resources),
        instance=DagsterInstance.get(),
        run_config=run_config,
        raise_on_error=raise_on_error,
    )
