"""Secrets stay out of the repository, and the locked dependencies are audited for known
vulnerabilities."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from deploy.audit import judge

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", [".env", ".env.local", "deploy/.env"])
def test_env_files_are_ignored_by_git(path: str):
    """``.env`` holds the settings' secrets (QTIS_API_TOKEN, a database URL with its password):
    a ``git add .`` must not pick it up."""
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", path], cwd=ROOT, capture_output=True
    )
    assert done.returncode == 0, f"{path} is not ignored by git: add it to .gitignore"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket closes


def test_lint_audits_both_locks_with_a_pinned_pip_audit():
    dry_run = subprocess.run(["make", "-n", "lint"], cwd=ROOT, capture_output=True, text=True)
    assert "deploy/audit.py constraints.txt deploy/requirements-serving.txt" in dry_run.stdout
    assert re.search(r"^pip-audit==\S+$", (ROOT / "constraints.txt").read_text(), re.M)
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("pip-audit") for r in dev["dev"])


def test_an_unreachable_advisory_service_is_one_line_and_no_failure(tmp_path: Path):
    """No network (here: every request goes to a proxy that is not there): lint passes and
    says, in one line, that the audit did not run."""
    proxy = f"http://127.0.0.1:{_closed_port()}"
    env = os.environ | {"XDG_CACHE_HOME": str(tmp_path), "NO_PROXY": "", "no_proxy": ""}
    env |= {name: proxy for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}
    done = subprocess.run(
        [sys.executable, "deploy/audit.py", "constraints.txt", "deploy/requirements-serving.txt"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "vulnerability audit skipped: the advisory service cannot be reached"
    ]


def test_a_service_that_knows_no_package_is_not_a_clean_bill():
    """pip-audit's own verdict on such a report is "No known vulnerabilities found"."""
    report = {
        "dependencies": [
            {"name": n, "skip_reason": f"Dependency not found on PyPI: {n}"} for n in ("a", "b")
        ],
        "fixes": [],
    }
    assert judge(report) == (
        0,
        [
            "vulnerability audit skipped: the advisory service answered for none of the 2 "
            "locked packages (offline, or a proxy in the way)"
        ],
    )


def test_a_known_vulnerability_fails_lint_and_names_the_fix():
    vuln = {"id": "PYSEC-2099-1", "fix_versions": ["2.0.1"], "aliases": [], "description": ""}
    report = {
        "dependencies": [
            {"name": "safe", "version": "1.0", "vulns": []},
            {"name": "shaky", "version": "2.0", "vulns": [vuln]},
            {"name": "shaky", "version": "2.0", "vulns": [vuln]},  # in both locks: once
            {"name": "local", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    assert judge(report) == (
        1,
        [
            "shaky 2.0: PYSEC-2099-1 (fixed in 2.0.1)",
            "vulnerability audit: 2 packages, 1 known vulnerabilities; "
            "not known to the advisory service: local",
        ],
    )
