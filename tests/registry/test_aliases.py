"""Alias moves against a real registry in Postgres: moves racing each other are serialized (never
two champions, every decision names the champion it really replaced), a crash around a move
leaves a champion that can be rolled back, and a roll-back target that does not load is refused.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from mlflow.artifacts import download_artifacts

from registry import aliases
from registry.model_registry import ModelRegistry
from registry.promotions import champions, history
from serving.probe import serving_probe
from tests.support.planted import register
from tests.support.promotion import holders, race, race_start, relaxed

pytestmark = pytest.mark.storage  # runs on the embedded server and on TimescaleDB

ROUNDS = 12


class Crash(BaseException):
    """The process dying mid-call: no ``except Exception`` handler sees it."""


@pytest.fixture(scope="module")
def three(planted_store):
    """Three planted versions under three registered names (aliases move across names)."""
    url, data, tracking = planted_store
    names = ("qtis-xgboost", "qtis-lstm", "qtis-transformer")
    found = {
        name: (name, register(url, data, skill=1.0, seed=10 + i, family=name.split("-")[1]))
        for i, name in enumerate(names)
    }
    return url, [found[n] for n in names], tracking


def test_a_promotion_racing_a_rollback_is_serialized(three):
    """B is champion (installed over A), C the challenger; a promotion of C and a roll-back to A
    start together, many times. Either order is fine; two champions, a failed move or a record
    naming a champion that had already been replaced are not."""
    url, (a, b, c), tracking = three
    registry = ModelRegistry(url, tracking)
    probe = serving_probe(url, samples=3, tracking=tracking)
    promote = partial(aliases.replace_with_challenger, url, probe=probe, tracking=tracking)
    back = partial(aliases.rollback, url, probe=probe, tracking=tracking)
    for round_ in range(ROUNDS):
        race_start(url, probe, a, b, c, tracking)
        reason = f"race {round_}"
        errors = race(
            lambda: promote(reason=reason),  # noqa: B023
            lambda: back(reason=reason),  # noqa: B023
        )
        assert errors == [], f"round {round_}"
        assert len(holders(registry, "champion")) == 1, f"round {round_}: two champions"
        latest, previous = history(url, 2).to_dict(orient="records")
        assert (latest["champion_model"], latest["champion_version"]) == (
            previous["model"], previous["version"],
        ), f"round {round_}: the later move did not record the champion it replaced"  # fmt: skip
        assert registry.champion() == (latest["model"], latest["version"]) == champions(url)[-1]


def test_a_crash_around_the_alias_move_leaves_a_champion_that_can_be_rolled_back(
    three, monkeypatch
):
    url, (a, b, _), tracking = three
    registry = ModelRegistry(url, tracking)
    probe = serving_probe(url, samples=3, tracking=tracking)
    if registry.champion() != a:
        aliases.force(url, *a, "crash setup", probe, relaxed(), tracking=tracking)
    move = ModelRegistry.move_alias

    def moved_then_crashed(self, alias, name, version):
        move(self, alias, name, version)
        raise Crash("killed right after the alias moved")

    monkeypatch.setattr(ModelRegistry, "move_alias", moved_then_crashed)
    with pytest.raises(Crash):
        aliases.force(url, *b, "crashes after the move", probe, relaxed(), tracking=tracking)
    monkeypatch.undo()
    assert registry.champion() == b
    back = aliases.rollback(url, probe=probe, reason="after the crash", tracking=tracking)
    assert (back.model, back.version, back.decision) == (*a, "rolled_back")
    assert registry.champion() == a

    def crashed_before(self, alias, name, version):
        raise Crash("killed before the alias moved")

    monkeypatch.setattr(ModelRegistry, "move_alias", crashed_before)
    with pytest.raises(Crash):
        aliases.force(url, *b, "crashes before the move", probe, relaxed(), tracking=tracking)
    monkeypatch.undo()
    assert registry.champion() == a
    assert champions(url)[-1] == a  # the move that never happened is not in the history
    crashed = history(url, 1).iloc[0]
    assert crashed["state"] == "pending"
    aliases.force(
        url, *b, "after the crash", probe, relaxed(), tracking=tracking
    )  # the next move reconciles
    assert registry.champion() == b == champions(url)[-1]
    states = history(url, 1000).set_index("id")["state"]
    assert states[crashed["id"]] == "abandoned"


def test_a_rollback_target_that_does_not_load_is_refused(three):
    url, (a, b, _), tracking = three
    registry = ModelRegistry(url, tracking)
    probe = serving_probe(url, samples=3, tracking=tracking)
    if registry.champion() != a:
        aliases.force(url, *a, "setup", probe, relaxed(), tracking=tracking)
    aliases.force(url, *b, "setup: installed over A", probe, relaxed(), tracking=tracking)
    source = registry.client.get_model_version(*a).source
    (Path(download_artifacts(artifact_uri=source)) / "MLmodel").unlink()  # A no longer loads
    before = len(history(url, 1000))
    with pytest.raises(ValueError, match=rf"cannot roll back to {a[0]} v{a[1]}: .*does not load"):
        aliases.rollback(url, probe=probe, reason="to a broken version", tracking=tracking)
    assert registry.champion() == b
    assert len(history(url, 1000)) == before  # nothing recorded
