"""Start-up paths stay light, and every import inside a function says why it is not at the top.

`qtis --help`, the serving client/predictor and the trading engine are imported on every command
or every trading process; a heavy library pulled in at module top anywhere below them costs
seconds each time. The check is structural (which libraries got imported), not a timing."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "lightning", "mlflow", "shap", "optuna", "xgboost", "dagster", "evidently")
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
    "root_packages"
]


def _heavy_after_import(module: str) -> list[str]:
    code = (
        f"import json, sys; import {module}; "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module", ["cli.app", "serving.client", "serving.predictor", "trading_runtime.engine"]
)
def test_start_up_path_loads_no_heavy_library(module: str) -> None:
    assert _heavy_after_import(module) == []


def _function_imports(path: Path) -> list[tuple[int, str]]:
    """(line, source line) of each import statement inside a function of ``path``."""
    tree = ast.parse(path.read_text())
    found = {
        node.lineno
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
        if isinstance(node, ast.Import | ast.ImportFrom)
    }
    lines = path.read_text().splitlines()
    return [(n, lines[n - 1]) for n in sorted(found)]


def test_every_function_level_import_says_why() -> None:
    unexplained = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text().splitlines()
            for line, text in _function_imports(path):
                above = lines[line - 2].strip() if line > 1 else ""
                if "#" not in text and not above.startswith("#"):
                    unexplained.append(f"{path.relative_to(ROOT)}:{line}: {text.strip()}")
    assert not unexplained, "imports inside functions without a reason:\n" + "\n".join(unexplained)
