"""Verifiable models: a registered version's artifacts are hashed at registration and the hash is
recorded with its promotion decision; serving, the trading runtime and the promotion probe refuse
a version whose files on disk (under the MLflow artifact root) are no longer those, with an alert
naming the version and both hashes."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest
from mlflow.artifacts import download_artifacts

from registry import aliases
from registry.model_registry import ModelRegistry
from registry.promotions import history
from serving.errors import NoChampion
from serving.predictor import Predictor
from serving.probe import serving_probe
from serving.settings import ServingSettings
from tests.support.planted import register, with_features
from tests.support.promotion import relaxed
from trading_runtime.runs import model_client
from training.artifacts import digest

pytestmark = pytest.mark.storage  # runs on the embedded server and on TimescaleDB

SETTINGS = ServingSettings(serve_shadow_log=False)
HASHES = r"sha256 [0-9a-f]{64} now, [0-9a-f]{64} recorded"


def stored(registry: ModelRegistry, version: str) -> Path:
    """The directory of qtis-xgboost ``version``'s files in the artifact store."""
    source = registry.client.get_model_version("qtis-xgboost", version).source
    return Path(download_artifacts(artifact_uri=source))


def swap(source: Path, target: Path) -> None:
    """Copy ``source``'s model files over ``target``'s (not MLmodel, which names the model):
    what loads is then another model, in a format that loads fine."""
    for path in source.rglob("*"):
        if path.is_file() and path.name not in ("MLmodel", "registered_model_meta"):
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def test_a_version_whose_artifacts_were_swapped_is_refused_everywhere(planted_store, caplog):
    url, data, tracking = planted_store
    registry, probe = ModelRegistry(url, tracking), serving_probe(url, samples=3, tracking=tracking)
    good = register(url, data, skill=1.0, seed=41)
    other = register(url, with_features(data, data.feature_names[:7]), skill=1.0, seed=42)
    aliases.force(url, "qtis-xgboost", good, "integrity test", probe, relaxed(), tracking=tracking)
    Predictor(url, SETTINGS, tracking=tracking).close()  # intact: it loads
    swap(stored(registry, other), stored(registry, good))
    label = f"qtis-xgboost v{good}"
    changed = rf"{label}: its artifacts changed since registration: {HASHES}"
    # as a library's logging.config.fileConfig leaves it (Optuna's migrations run one): the
    # integrity alert must still be heard
    logging.getLogger("qtis.alerts").disabled = True
    with caplog.at_level(logging.CRITICAL, logger="qtis.alerts"):
        with pytest.raises(NoChampion, match=changed):
            Predictor(url, SETTINGS, tracking=tracking)  # the service's predictor
        with pytest.raises(NoChampion, match=changed):
            model_client(url, None, SETTINGS, tracking)  # the trading runtime's, in process
        with pytest.raises(NoChampion, match=changed):
            Predictor.pinned(url, "qtis-xgboost", good, SETTINGS, tracking)  # a walk-forward's
        check = probe("qtis-xgboost", good)  # the promotion gate's
    assert not check.ok and check.detail.startswith("does not load: ArtifactMismatch: ")
    assert label in check.detail and "changed since registration" in check.detail
    alerts = [r for r in caplog.records if r.name == "qtis.alerts"]
    assert len(alerts) == 4 and all(label in r.getMessage() for r in alerts)
    with pytest.raises(
        ValueError, match=rf"{label} cannot be served, .* does not load: .*{HASHES}"
    ):
        aliases.force(url, "qtis-xgboost", good, "tampered", probe, relaxed(), tracking=tracking)


def test_the_hash_is_recorded_at_registration_and_with_the_decision(planted_store):
    url, data, tracking = planted_store
    registry, probe = ModelRegistry(url, tracking), serving_probe(url, samples=3, tracking=tracking)
    version = register(url, data, skill=1.0, seed=43)
    other = register(url, with_features(data, data.feature_names[-7:]), skill=1.0, seed=44)
    files = stored(registry, version)
    sha256 = registry.meta("qtis-xgboost", version).artifact_sha256
    assert sha256 == digest(files) and len(sha256) == 64
    aliases.force(url, "qtis-xgboost", version, "hash test", probe, relaxed(), tracking=tracking)
    decided = history(url, 1).iloc[0]
    assert decided["artifact_sha256"] == sha256
    predictor = Predictor(url, SETTINGS, tracking=tracking)
    assert predictor.champion.artifact_sha256 == sha256
    predictor.close()
    # no pickle anywhere in what was registered: every file is JSON, YAML, text, UBJSON
    assert not [p for p in files.rglob("*") if p.is_file() and p.read_bytes()[:1] == b"\x80"]
    # files swapped and re-tagged to match (write access to MLflow's database too): the digest
    # the promotion decision recorded still tells
    swap(stored(registry, other), files)
    registry.client.set_model_version_tag("qtis-xgboost", version, "artifact_sha256", digest(files))
    since = rf"since its promotion decision {decided['id']}: {HASHES}"
    with pytest.raises(NoChampion, match=since):
        Predictor(url, SETTINGS, tracking=tracking)
    check = probe("qtis-xgboost", version)  # e.g. before a roll-back to it
    assert not check.ok and re.search(since, check.detail)
    # a version with no digest to check (registered before they were taken) is refused too
    registry.client.delete_model_version_tag("qtis-xgboost", version, "artifact_sha256")
    with pytest.raises(NoChampion, match=f"qtis-xgboost v{version} has no artifact_sha256 tag"):
        Predictor(url, SETTINGS, tracking=tracking)
