"""Where the dbt project's manifest lives, and what counts as the project when deciding whether
it is stale: one target folder per process that builds at once (the test workers)."""

from __future__ import annotations

import pytest

from transforms.dbt_runner import PROJECT_DIR, _generated, manifest_path
from transforms.spec import SPEC_PATH


def test_the_manifest_follows_dbt_target_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    assert manifest_path() == PROJECT_DIR / "target" / "manifest.json"
    monkeypatch.setenv("DBT_TARGET_PATH", "target-gw1")
    assert manifest_path() == PROJECT_DIR / "target-gw1" / "manifest.json"


def test_only_dbt_outputs_are_left_out_of_the_project() -> None:
    for output in ("target/run/x.sql", "target-gw0/compiled/x.sql", "logs-gw1/x.yml"):
        assert _generated(PROJECT_DIR / output), output
    # the models, and the feature spec outside the dbt folder, are the project
    assert not _generated(PROJECT_DIR / "models" / "features" / "bar_features.sql")
    assert not _generated(SPEC_PATH)
