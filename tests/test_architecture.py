"""The shape of the tree: the layer contract, module and function sizes, tests that stay apart.

These fail the suite when a change breaks the structure a newcomer relies on (docs/architecture.md).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "warehouse", "quant", "transforms", "training", "registry", "serving",
            "trading_runtime", "monitoring", "orchestration", "cli", "demo")  # fmt: skip
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
# path or path::function -> why it may be longer
EXCEPTIONS: dict[str, str] = {
    "warehouse/migrations/versions/0001_market_schema.py::upgrade": (
        "a migration is one DDL script; splitting it would hide the schema it creates"
    ),
}


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_the_layer_contract_holds() -> None:
    """import-linter checks the contracts in pyproject.toml ([tool.importlinter])."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed (it is in the dev extra)"
    done = subprocess.run(
        [lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    source = path.read_text()
    lines = len(source.splitlines())
    if rel not in EXCEPTIONS:
        assert lines <= MAX_MODULE_LINES, f"{rel} has {lines} lines (> {MAX_MODULE_LINES})"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            key = f"{rel}::{node.name}"
            if key not in EXCEPTIONS:
                assert length <= MAX_FUNCTION_LINES, f"{key} has {length} lines"


def test_no_test_imports_another_test_module() -> None:
    """Shared fixtures and helpers live in tests/support/, so test modules stay independent."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                if module.startswith("tests.") and not module.startswith("tests.support"):
                    offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert not offenders, offenders


def test_the_bento_carries_every_package_serving_imports() -> None:
    """``bentoml build`` packages only what bentofile.yaml includes: a package serving reaches
    but the Bento leaves out fails only inside the container."""
    graph = grimp.build_graph(*PACKAGES)
    reached = {m.split(".")[0] for m in graph.find_upstream_modules("serving", as_package=True)}
    bento = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    included = {pattern.split("/")[0] for pattern in bento["include"]}
    assert reached | {"serving"} <= included, sorted(reached - included)
