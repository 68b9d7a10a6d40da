"""Run the dbt project against the QTIS database: connection, feature spec vars, manifest.

The profile (dbt/profiles.yml) reads ``QTIS_DBT_*`` variables that :func:`dbt_env` derives from
the database URL, and every invocation passes the feature spec as ``--vars``, so neither the
profile nor the models are ever edited by hand.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from transforms.spec import SPEC_PATH, FeatureSpec, default_spec

PROJECT_DIR = Path(__file__).parent / "dbt"


class DbtError(RuntimeError):
    """dbt failed; the message lists the failing nodes and their errors."""


def dbt_env(url: str, threads: int | None = None) -> dict[str, str]:
    """The profile's connection variables for a libpq URL (unix-socket hosts included). A URL
    without a password takes libpq's PGPASSWORD, as every other client does: the profile always
    hands dbt a password, and libpq takes an empty one as given, not as missing."""
    info = conninfo_to_dict(url)
    env = {
        "QTIS_DBT_HOST": str(info.get("host") or "localhost"),
        "QTIS_DBT_PORT": str(info.get("port") or 5432),
        "QTIS_DBT_USER": str(info.get("user") or "postgres"),
        "QTIS_DBT_PASSWORD": str(info.get("password") or os.environ.get("PGPASSWORD", "")),
        "QTIS_DBT_DBNAME": str(info.get("dbname") or "qtis"),
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    if threads:
        env["QTIS_DBT_THREADS"] = str(threads)
    return env


def dbt_vars(spec: FeatureSpec | None = None) -> str:
    return json.dumps({"qtis": (spec or default_spec()).dbt_vars()})


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def manifest_path() -> Path:
    """Where ``dbt parse`` writes the manifest. dbt's ``DBT_TARGET_PATH`` overrides the project's
    ``target``, so processes building at once (the test workers) each keep their own."""
    return PROJECT_DIR / os.environ.get("DBT_TARGET_PATH", "target") / "manifest.json"


def _project_mtime() -> float:
    files = [SPEC_PATH, *PROJECT_DIR.rglob("*.sql"), *PROJECT_DIR.rglob("*.yml")]
    files += PROJECT_DIR.glob("seeds/*.csv")
    return max(p.stat().st_mtime for p in files if not _generated(p))


def _generated(path: Path) -> bool:
    """In one of dbt's output folders (``target``, ``target-gw0``, ``logs``, packages)."""
    outputs = ("target", "logs", "dbt_packages")
    return path.is_relative_to(PROJECT_DIR) and path.relative_to(PROJECT_DIR).parts[0].startswith(
        outputs
    )


def ensure_manifest(spec: FeatureSpec | None = None) -> Path:
    """``dbt parse`` when the manifest is missing or older than the project (Dagster needs it)."""
    manifest = manifest_path()
    if manifest.exists() and manifest.stat().st_mtime >= _project_mtime():
        return manifest
    # deferred: dbt (~2 s measured) would load with transforms.build on every qtis command
    from dbt.cli.main import dbtRunner

    with _environ(dbt_env("postgresql://postgres@localhost/qtis")):
        result = dbtRunner().invoke(
            ["parse", "--project-dir", str(PROJECT_DIR), "--vars", dbt_vars(spec), "--quiet"]
        )
    if not result.success:
        raise DbtError(f"dbt parse failed: {result.exception}")
    return manifest


@dataclass
class NodeResult:
    name: str
    resource_type: str
    status: str
    seconds: float
    message: str = ""
    rows: int | None = None


@dataclass
class BuildReport:
    full_refresh: bool
    nodes: list[NodeResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def success(self) -> bool:
        return all(n.status in ("success", "pass", "warn", "skipped") for n in self.nodes)

    def failures(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status in ("error", "fail", "runtime error")]


def build(
    url: str,
    *,
    full_refresh: bool = False,
    select: str | None = None,
    spec: FeatureSpec | None = None,
    threads: int | None = None,
    on_node: Callable[[str, str], None] | None = None,
    tests: bool = True,
) -> BuildReport:
    """``dbt build`` (seeds, models, tests) in-process; ``on_node(name, status)`` shows progress.

    ``tests=False`` builds seeds and models only (the benchmark times tests separately).
    """
    from dbt.cli.main import dbtRunner  # deferred: dbt (~2 s), as in ensure_manifest

    args = ["build", "--project-dir", str(PROJECT_DIR), "--vars", dbt_vars(spec), "--quiet"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    if not tests:
        args += ["--exclude-resource-type", "test"]

    def callback(event) -> None:
        if on_node is None:
            return
        name = event.info.name
        if name == "NodeStart":
            on_node(event.data.node_info.node_name, "started")
        elif name == "NodeFinished":
            info = event.data.node_info
            on_node(info.node_name, info.node_status)

    started = time.perf_counter()
    with _environ(dbt_env(url, threads)):
        result = dbtRunner(callbacks=[callback]).invoke(args)
    report = BuildReport(full_refresh=full_refresh, seconds=time.perf_counter() - started)
    if result.result is None:
        raise DbtError(f"dbt build did not run: {result.exception}")
    for r in result.result.results:
        rows = (r.adapter_response or {}).get("rows_affected")
        report.nodes.append(
            NodeResult(
                name=r.node.name,
                resource_type=r.node.resource_type,
                status=str(r.status),
                seconds=r.execution_time,
                message=r.message or "",
                rows=rows if isinstance(rows, int) and rows >= 0 else None,
            )
        )
    return report
