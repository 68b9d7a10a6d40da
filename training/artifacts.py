"""The sha256 of a registered version's artifacts, taken at registration (model-version tag
``artifact_sha256``) and checked whenever the version is loaded: the files that load are the
files that were registered, and that passed the promotion gates.

The digest is over every file of the logged model's directory (its portable model, MLmodel, the
code that loads it, environment files and examples): the sha256 of the lines
``<sha256 of the file>  <path>`` sorted by path, like a ``sha256sum`` listing. MLflow's own
``registered_model_meta`` is left out: MLflow rewrites it on every download.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

from mlflow.artifacts import download_artifacts

from core.errors import QtisError
from training.portable import Portable, read

SKIPPED = frozenset({"registered_model_meta"})  # MLflow's, rewritten on each download
PORTABLE_DIR = "artifacts/qtis"  # where the logged model keeps its portable files
alerts = logging.getLogger("qtis.alerts")


class ArtifactMismatch(QtisError, ValueError):
    """A registered version's files are not the ones registered (or it has no hash to check)."""


def digest(directory: Path) -> str:
    """The sha256 of every file under ``directory`` (see the module's docstring)."""
    lines = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative not in SKIPPED:
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {relative}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def artifact_digest(uri: str, tracking_uri: str | None = None) -> str:
    """The digest of the model at ``uri`` (``models:/...``), as stored."""
    with tempfile.TemporaryDirectory() as tmp:
        local = download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=tracking_uri)
        return digest(Path(local))


def verify(label: str, actual: str, expected: str | None, source: str = "registration") -> None:
    """Refuse (and alert) unless ``actual`` is the ``expected`` digest ``source`` recorded."""
    if expected is None:
        message = (
            f"{label} has no artifact_sha256 tag: it was registered before QTIS hashed model"
            " artifacts, so its files cannot be checked; retrain it (`qtis train`) and promote"
            " the new version"
        )
    elif actual != expected:
        message = (
            f"{label}: its artifacts changed since {source}: sha256 {actual} now, {expected}"
            f" recorded; refusing to load it (restore the files or register a new version)"
        )
    else:
        return
    # a library's logging.config call (Optuna's and Evidently's migration env.py run
    # fileConfig, which disables every existing logger) must never silence this alert
    alerts.disabled = False
    alerts.critical(message, extra={"alert_key": f"model-integrity:{label}"})
    raise ArtifactMismatch(message)


def load_verified(
    uri: str, label: str, expected: str | None, tracking_uri: str | None = None
) -> tuple[Portable, str]:
    """The model at ``uri`` and its digest, read from a private copy only after the copy's
    digest matched ``expected`` (so the bytes checked are the bytes loaded)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=tracking_uri))
        actual = digest(local)
        verify(label, actual, expected)
        return read(local / PORTABLE_DIR), actual
