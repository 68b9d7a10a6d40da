"""The promotion record, ``mlops.promotions``: every decision on a registered version with its
gates and numbers, newest last; who has held @champion is read from it, and a roll-back walks it
back. A decision that moves an alias is written ``pending`` before the move and marked
``applied`` after it (``registry.aliases``); only applied decisions count as history. Also the
record of what the serving probe saw, the servable gate's input.

``training`` is imported where used: this module is part of what serving imports at start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from psycopg.types.json import Jsonb

from registry.model_registry import ModelRegistry
from registry.settings import TrackingSettings
from warehouse.db import connect

if TYPE_CHECKING:
    from training.promotion import Decision

INSTALLING = ("promoted", "forced")  # decisions that move @champion forward


@dataclass(frozen=True)
class ServingCheck:
    """What the serving probe saw: it loaded and answered through the schema, and how fast."""

    ok: bool
    p50_ms: float | None
    p99_ms: float | None
    detail: str


Probe = Callable[[str, str], ServingCheck]


def record(
    url: str, decision: Decision, state: str = "applied", artifact_sha256: str | None = None
) -> int:
    """Write one decision; ``pending`` when the alias it moves has not moved yet;
    ``artifact_sha256``: the version's registration digest (what the probe checked)."""
    # deferred: training.evaluate pulls torch+lightning (~6 s measured); serving.predictor,
    # which every trading run imports, imports this module
    from training.evaluate import plain

    gates = {"gates": [asdict(g) for g in decision.gates], "numbers": plain(decision.numbers)}
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "insert into mlops.promotions (model, version, run_id, decision, champion_model,"
            " champion_version, gates, reason, actor, state, artifact_sha256)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning id",
            (
                decision.model,
                decision.version,
                decision.run_id,
                decision.decision,
                decision.champion_model,
                decision.champion_version,
                Jsonb(plain(gates)),
                decision.reason,
                decision.actor,
                state,
                artifact_sha256,
            ),
        )
        return int(cur.fetchone()[0])


def mark(url: str, ids: list[int], state: str) -> None:
    """Settle pending decisions: ``applied`` (their alias moved) or ``abandoned``."""
    with connect(url) as conn:
        conn.execute("update mlops.promotions set state = %s where id = any(%s)", (state, ids))


def pending(url: str) -> list[tuple[int, str, str, str]]:
    """(id, model, version, decision) of every decision whose alias move was never settled."""
    with connect(url) as conn:
        rows = conn.execute(
            "select id, model, version, decision from mlops.promotions where state = 'pending'"
            " order by id"
        ).fetchall()
    return [(int(i), m, str(v), d) for i, m, v, d in rows]


def history(url: str, limit: int = 20) -> pd.DataFrame:
    """The latest decisions, newest first."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select id, decided_at, model, version, decision, champion_model, champion_version,"
            " gates, reason, actor, state, artifact_sha256 from mlops.promotions"
            " order by id desc limit %s",
            (limit,),
        )
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def champions(url: str) -> list[tuple[str, str]]:
    """Every (model, version) that has held @champion (promoted, forced, or rolled back to),
    oldest first by its latest such decision."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select model, version from mlops.promotions where decision = any(%s)"
            " and state = 'applied' group by model, version order by max(id)",
            ([*INSTALLING, "rolled_back"],),
        )
        return [(model, str(version)) for model, version in cur.fetchall()]


def installed(url: str, name: str, version: str, run_id: str) -> dict[str, Any] | None:
    """The latest decision that gave this version @champion (promoted, forced, rolled back to),
    as the service shows it; None when it never held it."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select id, decided_at, decision, reason, gates, actor, artifact_sha256"
            " from mlops.promotions"
            " where model = %s and version = %s and run_id = %s and decision = any(%s)"
            " and state = 'applied' order by id desc limit 1",
            (name, version, run_id, [*INSTALLING, "rolled_back"]),
        )
        row = cur.fetchone()
    if row is None:
        return None
    keys = ("id", "decided_at", "decision", "reason", "gates", "actor", "artifact_sha256")
    return dict(zip(keys, row, strict=True))


def installed_over(url: str, name: str, version: str, run_id: str) -> tuple[str, str] | None:
    """The champion that this version replaced when it was last installed (promoted or forced);
    None for the first champion."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select champion_model, champion_version from mlops.promotions where model = %s"
            " and version = %s and run_id = %s and decision = any(%s) and state = 'applied'"
            " order by id desc limit 1",
            (name, version, run_id, list(INSTALLING)),
        )
        row = cur.fetchone()
    return None if row is None or row[0] is None else (row[0], row[1])


def as_decisions(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of :func:`history` shaped like ``Decision.to_dict()``: ``gates`` the list of gates."""
    return [
        {**row, "gates": (row["gates"] or {}).get("gates", [])}
        for row in frame.to_dict(orient="records")
    ]


def decided(url: str, name: str, version: str, run_id: str) -> bool:
    """Whether this version (of this MLflow store: the run id tells) has a decision already (one
    whose move was abandoned does not count)."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select 1 from mlops.promotions where model = %s and version = %s and run_id = %s"
            " and state <> 'abandoned' limit 1",
            (name, str(version), run_id),
        )
        return cur.fetchone() is not None


def status(url: str, limit: int = 10, *, tracking: TrackingSettings) -> dict[str, Any]:
    """Champion, challenger (in ``tracking``'s store) and the latest decisions."""
    registry = ModelRegistry(url, tracking)
    return {
        "champion": registry.champion(),
        "challenger": registry.challenger(),
        "decisions": history(url, limit),
    }
