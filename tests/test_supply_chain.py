"""Secrets stay out of the repository, and the locked dependencies are audited for known
vulnerabilities."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", [".env", ".env.local", "deploy/.env"])
def test_env_files_are_ignored_by_git(path: str):
    """``.env`` holds the settings' secrets (QTIS_API_TOKEN, a database URL with its password):
    a ``git add .`` must not pick it up."""
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", path], cwd=ROOT, capture_output=True
    )
    assert done.returncode == 0, f"{path} is not ignored by git: add it to .gitignore"
