"""What a registered version's tags say about it, parsed once into typed fields.

Training writes these tags (``training.tracking.log_family`` / ``log_update``, the ensemble and
online updates); every reader above training reads a :class:`VersionMeta` instead of raw strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime


def _when(tags: Mapping[str, str], key: str) -> datetime | None:
    """A timestamp tag as a UTC datetime (tagged naive, in UTC); None when untagged or empty."""
    value = tags.get(key)
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


@dataclass(frozen=True)
class VersionMeta:
    """Lineage of one registered version, from its run's tags (its version's tags win)."""

    family: str | None  # model_family: lstm, transformer, xgboost, ensemble
    trained_through: datetime | None  # last training row
    label_end: datetime | None  # last bar a training label looked at
    symbols: tuple[str, ...]  # the universe it was trained on (empty: not tagged)
    spec_hash: str | None  # feature_spec_sha256: the feature spec it was trained with
    tuning_trials: int  # trials behind the choice of its configuration (0: untuned)
    update_of: str | None  # the version an online update started from

    @classmethod
    def from_tags(
        cls, run_tags: Mapping[str, str], version_tags: Mapping[str, str] | None = None
    ) -> VersionMeta:
        tags = {**run_tags, **(version_tags or {})}
        symbols = tags.get("symbols")
        return cls(
            family=tags.get("model_family"),
            trained_through=_when(tags, "trained_through"),
            label_end=_when(tags, "label_end"),
            symbols=tuple(symbols.split(",")) if symbols else (),
            spec_hash=tags.get("feature_spec_sha256"),
            tuning_trials=int(tags.get("tuning_trials", "0") or 0),
            update_of=tags.get("update_of"),
        )
