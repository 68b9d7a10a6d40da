"""Moving @champion and @challenger, each move a recorded decision: a promotion round (the gates
of ``training.promotion`` judge, this applies), a forced promotion, a roll-back to the previous
champion, and the challenger replacing the champion."""

from __future__ import annotations

from collections.abc import Sequence

from registry.model_registry import ModelRegistry
from registry.promotions import Probe, decided, installed_over, record
from registry.settings import TrackingSettings
from training.promotion import Decision, PromotionSettings, judge_forced, judge_round
from training.tracking import CHALLENGER, CHAMPION, REGISTERED_NAMES


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
    registry = ModelRegistry(url, tracking)
    candidates = list(candidates) if candidates is not None else default_candidates(registry)
    current = registry.champion()
    decisions = judge_round(registry.client, url, probe, candidates, current, settings, actor)
    for kind, alias in (("promoted", CHAMPION), ("challenger", CHALLENGER)):
        for d in decisions:
            if d.decision == kind:
                registry.move_alias(alias, d.model, d.version)
    for decision in decisions:
        record(url, decision)
    return decisions


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
    registry = ModelRegistry(url, tracking)
    current = registry.champion()
    check = probe(name, str(version))
    decision = judge_forced(
        registry.client, url, name, str(version), reason, check, current, settings, actor
    )
    registry.move_alias(CHAMPION, name, str(version))
    record(url, decision)
    return decision


def rollback(
    url: str, reason: str = "rollback", actor: str = "cli", *, tracking: TrackingSettings
) -> Decision:
    """Give @champion back to the version that held it before the current one was installed."""
    registry = ModelRegistry(url, tracking)
    current = registry.champion()
    if current is None:
        raise ValueError("no model holds @champion: nothing to roll back")
    previous = installed_over(url, *current, registry.run_id(*current))
    if previous is None:
        raise ValueError(
            f"{current[0]} v{current[1]} was the first champion: there is no earlier one"
        )
    registry.move_alias(CHAMPION, *previous)
    decision = Decision(
        *previous, "rolled_back", *current, (), f"{reason} (from {current[0]} v{current[1]})",
        actor, {}, registry.run_id(*previous),
    )  # fmt: skip
    record(url, decision)
    return decision


def replace_with_challenger(
    url: str, reason: str, actor: str = "cli", *, tracking: TrackingSettings
) -> Decision:
    """Give @champion to the version holding @challenger (the shadow book showed it trading
    better); the old champion is where a roll-back returns to."""
    registry = ModelRegistry(url, tracking)
    current, challenger = registry.champion(), registry.challenger()
    if challenger is None:
        raise ValueError("no model holds @challenger: there is nothing to replace the champion by")
    registry.move_alias(CHAMPION, *challenger)
    registry.client.delete_registered_model_alias(challenger[0], CHALLENGER)
    where = f" (from {current[0]} v{current[1]})" if current else ""
    decision = Decision(
        *challenger, "promoted", *(current or (None, None)), (), f"{reason}{where}", actor, {},
        registry.run_id(*challenger),
    )  # fmt: skip
    record(url, decision)
    return decision
