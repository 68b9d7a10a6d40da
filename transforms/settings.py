"""Typed settings of the feature build (``QTIS_FEATURES_*``)."""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from core.settings import QtisSettings

# a worker process costs its start (arch, scipy: ~2 s): below this many symbols each, one
# process fits them sooner
SYMBOLS_PER_WORKER = 8


class FeatureSettings(QtisSettings):
    """How the Python features are computed (``QTIS_FEATURES_*``); what they are is the
    feature spec's (transforms/feature_spec.yml)."""

    model_config = SettingsConfigDict(env_prefix="QTIS_FEATURES_")

    garch_workers: int = Field(
        0,
        ge=0,
        description="processes fitting GARCH, a symbol at a time (0: one per CPU core; never"
        " more than one per 8 symbols); the fits are the same whatever the number",
    )

    def workers(self, symbols: int) -> int:
        """How many processes fit ``symbols`` symbols (1: in this process)."""
        wanted = self.garch_workers or os.cpu_count() or 1
        return max(1, min(wanted, symbols // SYMBOLS_PER_WORKER))
