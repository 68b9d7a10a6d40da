"""Promotion gate settings for tests that need a champion but are not about serving latency, and
the moves of the alias races (a promotion against a roll-back)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from registry import aliases
from registry.model_registry import ModelRegistry
from registry.promotions import Probe
from training.settings import PromotionSettings, TrackingSettings

# The gate's p99 single-window budget (10 ms by default) is a serving target; on a shared 2-core
# machine a busy moment can push a small model's p99 past it, which would fail a fixture that
# only needs a champion. Latency itself is tested in tests/training/test_promotion.py.
LATENCY_BUDGET_MS = 1000.0

Version = tuple[str, str]


def relaxed(**overrides: object) -> PromotionSettings:
    """The default gates with a latency budget no probe on a loaded machine misses."""
    return PromotionSettings(latency_budget_ms=LATENCY_BUDGET_MS, **overrides)


def holders(registry: ModelRegistry, alias: str) -> list[Version]:
    """Every qtis-* version holding ``alias`` (one at most, if moves are serialized)."""
    return [
        (m.name, str(m.aliases[alias]))
        for m in registry.client.search_registered_models("name LIKE 'qtis-%'")
        if alias in (m.aliases or {})
    ]


def race_start(
    url: str, probe: Probe, a: Version, b: Version, c: Version, tracking: TrackingSettings
) -> None:
    """B the champion installed over A (where a roll-back returns to), C the challenger."""
    registry = ModelRegistry(url, tracking)
    if registry.champion() == c:  # C was installed over B or over A: back to that one
        aliases.rollback(url, probe=probe, reason="race reset", tracking=tracking)
    if registry.champion() != b:
        if registry.champion() != a:
            aliases.force(url, *a, "race reset", probe, relaxed(), tracking=tracking)
        aliases.force(url, *b, "race reset", probe, relaxed(), tracking=tracking)
    registry.move_alias("challenger", *c)


def race(*moves: Callable[[], object]) -> list[str]:
    """Run ``moves`` in threads started together; the errors they raised."""
    start, errors = threading.Barrier(len(moves)), []

    def run(move: Callable[[], object]) -> None:
        start.wait()
        try:
            move()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(m,)) for m in moves]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors
