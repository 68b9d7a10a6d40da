"""Moving @champion and @challenger, each move a recorded decision: a promotion round (the gates
of ``training.promotion`` judge, this applies), a forced promotion, a roll-back to the previous
champion, and the challenger replacing the champion.

Every move is planned from the aliases as they are (judging, probing: the slow part), then
applied under a Postgres advisory lock on the warehouse, so that moves from any process take
turns: if the aliases changed since the plan was made, it is made again. Applying writes the
decisions first (``pending``), moves the aliases, then marks them ``applied``; a move a crash
interrupted is settled by the next one (:func:`reconcile`), so the record never misses a move
and a roll-back always finds the champion it returns to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg

from registry.model_registry import ModelRegistry
from registry.promotions import Probe, decided, installed_over, mark, pending, record
from registry.settings import TrackingSettings
from training.promotion import Decision, PromotionSettings, judge_forced, judge_round
from training.tracking import CHALLENGER, CHAMPION, REGISTERED_NAMES
from warehouse.db import connect

LOCK = "qtis_alias_moves"  # the advisory lock's name (hashed to its key)
LOCK_WAIT = "60s"  # a move waits this long for another one (moves hold the lock ~0.1 s)
ATTEMPTS = 3  # plans made before giving up on aliases that keep changing
MOVES = {"promoted": CHAMPION, "forced": CHAMPION, "rolled_back": CHAMPION,
         "challenger": CHALLENGER}  # fmt: skip

Aliases = tuple[tuple[str, str] | None, tuple[str, str] | None]  # (champion, challenger)
Plan = Callable[[ModelRegistry, Aliases], list[Decision]]


class AliasesBusy(ValueError):
    """Another move held the lock too long, or the aliases kept changing under the plan."""


def default_candidates(registry: ModelRegistry) -> list[tuple[str, str]]:
    """The latest walk-forward-trained version of each qtis-* model not yet decided on."""
    out = []
    for name in REGISTERED_NAMES.values():
        versions = [
            v
            for v in registry.client.search_model_versions(f"name='{name}'")
            if "update_of" not in v.tags
        ]
        if not versions:
            continue
        latest = max(versions, key=lambda v: int(v.version))
        if not decided(registry.url, name, latest.version, latest.run_id):
            out.append((name, str(latest.version)))
    return out


@contextmanager
def serialized(url: str) -> Iterator[None]:
    """Hold the alias-move lock (a session advisory lock on the warehouse: a process that dies
    releases it with its connection)."""
    with connect(url, autocommit=True) as conn:
        conn.execute("select set_config('lock_timeout', %s, false)", (LOCK_WAIT,))
        try:
            conn.execute("select pg_advisory_lock(hashtext(%s))", (LOCK,))
        except psycopg.errors.LockNotAvailable as exc:
            raise AliasesBusy(
                f"another promotion or roll-back has held the alias lock for {LOCK_WAIT}: "
                "try again when it is done"
            ) from exc
        try:
            yield
        finally:
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (LOCK,))


def reconcile(url: str, registry: ModelRegistry) -> None:
    """Settle the decisions a crash left pending: ``applied`` if their alias did move, else
    ``abandoned``. Call under :func:`serialized`."""
    for id_, model, version, decision in pending(url):
        moved = registry.holder(MOVES[decision]) == (model, version)
        mark(url, [id_], "applied" if moved else "abandoned")


def _apply(url: str, registry: ModelRegistry, decisions: list[Decision]) -> None:
    """Record, move, mark: a crash at any point leaves a record :func:`reconcile` settles."""
    moving = [d for d in decisions if d.decision in MOVES]
    for d in decisions:
        if d.decision not in MOVES:
            record(url, d, artifact_sha256=_sha256(registry, d))
    ids = [record(url, d, "pending", _sha256(registry, d)) for d in moving]
    for d in sorted(moving, key=lambda d: MOVES[d.decision] != CHAMPION):  # champion first
        registry.move_alias(MOVES[d.decision], d.model, d.version)
    if ids:
        mark(url, ids, "applied")


def _sha256(registry: ModelRegistry, decision: Decision) -> str | None:
    """The registration digest of the version decided on: what the probe checked its files
    against, and what serving checks them against when it installs the version."""
    return registry.meta(decision.model, decision.version).artifact_sha256


def _aliases(registry: ModelRegistry) -> Aliases:
    return registry.champion(), registry.challenger()


def move(url: str, plan: Plan, tracking: TrackingSettings) -> list[Decision]:
    """Plan from the aliases as they are, then apply under the lock if they are still so."""
    registry = ModelRegistry(url, tracking)
    with serialized(url):
        reconcile(url, registry)
    for _ in range(ATTEMPTS):
        seen = _aliases(registry)
        decisions = plan(registry, seen)
        with serialized(url):
            reconcile(url, registry)
            if _aliases(registry) == seen:
                _apply(url, registry, decisions)
                return decisions
    raise AliasesBusy(f"the aliases changed {ATTEMPTS} times while this move was planned: retry")


def promote(
    url: str,
    probe: Probe,
    settings: PromotionSettings,
    candidates: Sequence[tuple[str, str]] | None = None,
    actor: str = "promotion",
    *,
    tracking: TrackingSettings,
) -> list[Decision]:
    """Judge ``candidates`` (default: :func:`default_candidates`) against the champion; the one
    passing every gate with the highest deflated Sharpe ratio becomes champion, the best other
    servable one the shadow challenger (when there is a champion). Every decision is recorded.
    ``settings``: the gates (QTIS_PROMOTE_*), ``tracking``: the MLflow store, both built by the
    entry point."""

    def plan(registry: ModelRegistry, seen: Aliases) -> list[Decision]:
        judged = list(candidates) if candidates is not None else default_candidates(registry)
        return judge_round(registry.client, url, probe, judged, seen[0], settings, actor)

    return move(url, plan, tracking)


def force(
    url: str,
    name: str,
    version: str,
    reason: str,
    probe: Probe,
    settings: PromotionSettings,
    actor: str = "cli",
    *,
    tracking: TrackingSettings,
) -> Decision:
    """Make ``name`` ``version`` champion whatever its statistical gates say (they are still
    computed and recorded), but never one the service could not load."""
    if not reason.strip():
        raise ValueError("a forced promotion needs a reason (--reason)")

    def plan(registry: ModelRegistry, seen: Aliases) -> list[Decision]:
        check = probe(name, str(version))
        return [
            judge_forced(
                registry.client, url, name, str(version), reason, check, seen[0], settings, actor
            )
        ]

    return move(url, plan, tracking)[0]


def _probed(probe: Probe, target: tuple[str, str], what: str) -> None:
    """Refuse to install ``target`` unless it loads and answers the way the service needs."""
    check = probe(*target)
    if not check.ok:
        raise ValueError(f"cannot {what} {target[0]} v{target[1]}: {check.detail}")


def rollback(
    url: str,
    probe: Probe,
    reason: str = "rollback",
    actor: str = "cli",
    *,
    tracking: TrackingSettings,
) -> Decision:
    """Give @champion back to the version that held it before the current one was installed,
    once ``probe`` shows that it loads and answers."""

    def plan(registry: ModelRegistry, seen: Aliases) -> list[Decision]:
        current = seen[0]
        if current is None:
            raise ValueError("no model holds @champion: nothing to roll back")
        previous = installed_over(url, *current, registry.run_id(*current))
        if previous is None:
            raise ValueError(
                f"{current[0]} v{current[1]} was the first champion: there is no earlier one"
            )
        _probed(probe, previous, "roll back to")
        return [
            Decision(
                *previous, "rolled_back", *current, (),
                f"{reason} (from {current[0]} v{current[1]})", actor, {},
                registry.run_id(*previous),
            )
        ]  # fmt: skip

    return move(url, plan, tracking)[0]


def replace_with_challenger(
    url: str, probe: Probe, reason: str, actor: str = "cli", *, tracking: TrackingSettings
) -> Decision:
    """Give @champion to the version holding @challenger (the shadow book showed it trading
    better), once ``probe`` shows that it loads and answers; the old champion is where a
    roll-back returns to."""

    def plan(registry: ModelRegistry, seen: Aliases) -> list[Decision]:
        current, challenger = seen
        if challenger is None:
            raise ValueError(
                "no model holds @challenger: there is nothing to replace the champion by"
            )
        _probed(probe, challenger, "give @champion to the challenger")
        where = f" (from {current[0]} v{current[1]})" if current else ""
        return [
            Decision(
                *challenger, "promoted", *(current or (None, None)), (), f"{reason}{where}",
                actor, {}, registry.run_id(*challenger),
            )
        ]  # fmt: skip

    return move(url, plan, tracking)[0]
