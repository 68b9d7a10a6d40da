"""The shape of the tree: the layer contract, module and function sizes, tests that stay apart.

These fail the suite when a change breaks the structure a newcomer relies on (docs/architecture.md).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import grimp
import pytest
import yaml
from packaging.utils import canonicalize_name

from training.tracking import MODEL_REQUIREMENTS

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


def _reached_by_serving() -> set[str]:
    """Top-level modules that serving imports, directly or through the packages below it."""
    graph = grimp.build_graph(*PACKAGES, include_external_packages=True)
    return {m.split(".")[0] for m in graph.find_upstream_modules("serving", as_package=True)}


def test_the_bento_carries_every_package_serving_imports() -> None:
    """``bentoml build`` packages only what bentofile.yaml includes: a package serving reaches
    but the Bento leaves out fails only inside the container."""
    reached = _reached_by_serving() & set(PACKAGES)
    bento = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    included = {pattern.split("/")[0] for pattern in bento["include"]}
    assert reached | {"serving"} <= included, sorted(reached - included)


def _requirements(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (pinned version, sha256 hashes) of a pip requirements file; a line that is not
    ``name==version`` with hashes fails the test."""
    entries = {}
    text = path.read_text().replace("\\\n", " ")
    for line in (raw.split("#", 1)[0].strip() for raw in text.splitlines()):
        if not line:
            continue
        spec, *options = line.split()
        name, pinned, version = spec.partition("==")
        hashes = [o.removeprefix("--hash=sha256:") for o in options if o.startswith("--hash=")]
        assert pinned and version and hashes, f"{path.name}: not pinned with hashes: {line}"
        assert all(len(h) == 64 for h in hashes), f"{path.name}: not a sha256 hash in {line}"
        entries[canonicalize_name(name.split("[")[0])] = (version, hashes)
    return entries


def test_the_bento_installs_pinned_hashed_serving_requirements() -> None:
    """The Bento installs serving's dependencies only, each pinned and checked against its
    sha256 (pip's hash-checking mode), at the versions of the project's lock."""
    bento = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert bento["python"]["requirements_txt"] == "./deploy/requirements-serving.txt"
    serving = _requirements(ROOT / "deploy" / "requirements-serving.txt")
    lock = {
        canonicalize_name(name): version
        for name, _, version in (
            line.strip().partition("==")
            for line in (ROOT / "constraints.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")
        )
    }
    drifted = {n: (v, lock[n]) for n, (v, _) in serving.items() if n in lock and v != lock[n]}
    assert not drifted, (
        f"serving pins differ from constraints.txt (name: (serving, lock)): {drifted}"
    )
    development = {"dagster", "dbt-core", "optuna", "evidently", "pytest", "ruff", "playwright"}
    assert not development & serving.keys(), "the Bento installs the development stack"


def test_the_serving_requirements_cover_what_serving_imports() -> None:
    """Every third-party module that serving (or a package below it) imports, and what a
    registered model needs to load, is in the Bento's requirements."""
    own = set(PACKAGES) | set(sys.stdlib_module_names) | {"__future__"}
    providers = metadata.packages_distributions()
    needed = {
        module: {canonicalize_name(d) for d in providers.get(module, [module])}
        for module in _reached_by_serving() - own
    }
    needed |= {name: {canonicalize_name(name)} for name in MODEL_REQUIREMENTS}
    serving = _requirements(ROOT / "deploy" / "requirements-serving.txt")
    missing = sorted(module for module, dists in needed.items() if not dists & serving.keys())
    assert not missing, f"deploy/requirements-serving.in lacks what provides: {missing}"
