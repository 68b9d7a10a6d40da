"""What a registered version's tags say about it, parsed once into typed fields.

Training writes these tags (``training.tracking.log_family`` / ``log_update``, the runner, the
ensemble and online updates), so it owns their vocabulary: writers build them with
:meth:`VersionMeta.to_tags` or :func:`stamp`, and every reader (training's own, the registry and
above) reads a :class:`VersionMeta` instead of raw strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

FAMILY = "model_family"
TRAINED_THROUGH = "trained_through"
LABEL_END = "label_end"
SYMBOLS = "symbols"
SPEC_HASH = "feature_spec_sha256"
TUNING_TRIALS = "tuning_trials"
UPDATE_OF = "update_of"
ARTIFACT_SHA256 = "artifact_sha256"  # a model-version tag, set at registration


def _when(tags: Mapping[str, str], key: str) -> datetime | None:
    """A timestamp tag as a UTC datetime (tagged naive, in UTC); None when untagged or empty."""
    value = tags.get(key)
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


def moment(value: np.datetime64) -> datetime:
    """A bar time (naive, in UTC) as the UTC datetime :class:`VersionMeta` holds."""
    return value.astype("datetime64[us]").item().replace(tzinfo=UTC)


def stamp(value: datetime | np.datetime64) -> str:
    """A timestamp as training tags it: naive UTC to the microsecond, as numpy prints a bar time
    (``2012-03-30T00:00:00.000000``)."""
    if isinstance(value, np.datetime64):
        return str(value.astype("datetime64[us]"))
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


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
    # sha256 of the version's artifacts as registered (training.artifacts); None: not hashed
    artifact_sha256: str | None = None

    @classmethod
    def from_tags(
        cls, run_tags: Mapping[str, str], version_tags: Mapping[str, str] | None = None
    ) -> VersionMeta:
        tags = {**run_tags, **(version_tags or {})}
        symbols = tags.get(SYMBOLS)
        return cls(
            family=tags.get(FAMILY),
            trained_through=_when(tags, TRAINED_THROUGH),
            label_end=_when(tags, LABEL_END),
            symbols=tuple(symbols.split(",")) if symbols else (),
            spec_hash=tags.get(SPEC_HASH),
            tuning_trials=int(tags.get(TUNING_TRIALS, "0") or 0),
            update_of=tags.get(UPDATE_OF),
            artifact_sha256=tags.get(ARTIFACT_SHA256),
        )

    def to_tags(self) -> dict[str, str]:
        """The tags that say this (what :meth:`from_tags` reads back); unknown fields (None, no
        symbols) are left out, the trial count always written."""
        tags = {
            FAMILY: self.family,
            TRAINED_THROUGH: stamp(self.trained_through) if self.trained_through else None,
            LABEL_END: stamp(self.label_end) if self.label_end else None,
            SYMBOLS: ",".join(self.symbols) if self.symbols else None,
            SPEC_HASH: self.spec_hash,
            TUNING_TRIALS: str(self.tuning_trials),
            UPDATE_OF: self.update_of,
            ARTIFACT_SHA256: self.artifact_sha256,
        }
        return {k: v for k, v in tags.items() if v is not None}
