"""Known vulnerabilities in the locked dependencies, for ``make lint``:
``python deploy/audit.py constraints.txt deploy/requirements-serving.txt``.

pip-audit asks an advisory service about every pinned package. Offline, it either crashes on the
first connection error or, behind a proxy that answers "not found" for every package, reports
"No known vulnerabilities found" having audited nothing. Both cases print one line here that
says the audit did not run, and exit 0, so that lint works offline without claiming a clean bill.
A known vulnerability exits 1 and names the package, the advisory and the fixed versions.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# what requests raises when the service cannot be reached at all
NETWORK_ERROR = re.compile(
    r"requests\.exceptions\.(ConnectionError|ProxyError|SSLError|ConnectTimeout|ReadTimeout)\b"
)


def judge(report: dict) -> tuple[int, list[str]]:
    """Exit code and lines to print for a pip-audit JSON report."""
    deps = {(d["name"], d.get("version")): d for d in report["dependencies"]}.values()
    audited = [d for d in deps if "vulns" in d]
    skipped = sorted(d["name"] for d in deps if "skip_reason" in d)
    if not audited:
        return 0, [
            f"vulnerability audit skipped: the advisory service answered for none of the "
            f"{len(skipped)} locked packages (offline, or a proxy in the way)"
        ]
    found = [(d, v) for d in audited for v in d["vulns"]]
    lines = [
        f"{d['name']} {d['version']}: {v['id']} "
        f"(fixed in {', '.join(v['fix_versions']) or 'no release yet'})"
        for d, v in found
    ]
    summary = f"vulnerability audit: {len(audited)} packages, {len(found)} known vulnerabilities"
    if skipped:
        summary += f"; not known to the advisory service: {', '.join(skipped)}"
    return (1 if found else 0), [*lines, summary]


def audit(requirements: list[Path]) -> tuple[int, list[str]]:
    """Run pip-audit on each pinned requirement file (no resolution: the pins are the lock; one
    file at a time, since a file with hashes puts pip-audit in hash-checking mode for all)."""
    dependencies = []
    for path in requirements:
        report, error = _pip_audit(path)
        if report is None:
            if NETWORK_ERROR.search(error):
                return 0, ["vulnerability audit skipped: the advisory service cannot be reached"]
            return 1, [error.strip()[-4000:], f"vulnerability audit of {path} failed"]
        dependencies += report["dependencies"]
    return judge({"dependencies": dependencies})


def _pip_audit(path: Path) -> tuple[dict | None, str]:
    """pip-audit's JSON report on ``path`` (None when it wrote none) and its error output."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip_audit", "-r", str(path), "--no-deps"]
        command += ["--disable-pip", "--progress-spinner", "off", "--format", "json"]
        done = subprocess.run([*command, "--output", str(report)], capture_output=True, text=True)
        if report.exists() and report.stat().st_size:
            return json.loads(report.read_text()), done.stderr
    return None, done.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="+", type=Path, help="pinned requirement files")
    code, lines = audit(parser.parse_args(argv).requirements)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
