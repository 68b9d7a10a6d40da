"""The MLflow model registry of one QTIS database: which versions hold @champion/@challenger,
moving those aliases, what each version's tags say, and loading a version for serving.

MLflow and ``training.tracking`` are imported where used: importing them takes seconds, and the
serving interface (which the trading runtime imports for its types) must stay quick to import.
"""

from __future__ import annotations

from registry.loaded import LoadedModel, limit_threads
from registry.settings import TrackingSettings
from training.lineage import VersionMeta
from transforms.spec import default_spec


class ModelRegistry:
    """The registry beside the warehouse at ``url`` (or at ``settings.tracking_uri``); the
    entry point builds ``settings`` and passes them down."""

    def __init__(self, url: str, settings: TrackingSettings) -> None:
        # deferred: mlflow (~1 s) and training.tracking (torch+lightning, ~6 s measured) load
        # when a registry opens, not with serving.predictor, which every trading run imports
        import mlflow
        from mlflow.tracking import MlflowClient  # deferred: as above

        from training.tracking import configure  # deferred: as above

        self.url, self.settings = url, settings
        configure(url, self.settings)  # the experiment runs go to, and MLflow's default store
        self.uri = mlflow.get_tracking_uri()
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def holder(self, alias: str) -> tuple[str, str] | None:
        """(registered name, version) holding ``alias`` among the qtis-* models, if any."""
        from training.tracking import holder  # deferred: torch+lightning, see __init__

        return holder(self.client, alias)

    def champion(self) -> tuple[str, str] | None:
        from training.tracking import CHAMPION  # deferred: torch+lightning, see __init__

        return self.holder(CHAMPION)

    def challenger(self) -> tuple[str, str] | None:
        from training.tracking import CHALLENGER  # deferred: torch+lightning, see __init__

        return self.holder(CHALLENGER)

    def move_alias(self, alias: str, name: str, version: str) -> None:
        """Give ``alias`` to ``name`` ``version`` and take it from every other qtis-* model (and
        the other alias from this version: a version is champion or challenger, never both)."""
        from training.tracking import CHALLENGER, CHAMPION  # deferred: see __init__

        other = CHALLENGER if alias == CHAMPION else CHAMPION
        for m in self.client.search_registered_models("name LIKE 'qtis-%'"):
            aliases = m.aliases or {}
            if alias in aliases and m.name != name:
                self.client.delete_registered_model_alias(m.name, alias)
            if m.name == name and str(aliases.get(other)) == str(version):
                self.client.delete_registered_model_alias(m.name, other)
        self.client.set_registered_model_alias(name, alias, str(version))

    def run_id(self, name: str, version: str) -> str:
        """The MLflow run behind a version."""
        return self.client.get_model_version(name, str(version)).run_id

    def meta(self, name: str, version: str) -> VersionMeta:
        found = self.client.get_model_version(name, str(version))
        return VersionMeta.from_tags(self.client.get_run(found.run_id).data.tags, found.tags)

    def load(self, role: str, name: str, version: str, threads: int = 1) -> LoadedModel:
        """One registered version, with what a request must look like for it; refused (an
        ``ArtifactMismatch``, and an alert) unless its files hash to the digest taken at
        registration."""
        # deferred: training.artifacts reads the bundles (torch+lightning, ~6 s), see __init__
        from training.artifacts import load_verified

        found = self.client.get_model_version(name, str(version))
        meta = VersionMeta.from_tags(self.client.get_run(found.run_id).data.tags, found.tags)
        model, sha256 = load_verified(
            found.source, f"{name} v{version}", meta.artifact_sha256, self.uri
        )
        limit_threads(model.bundle, threads)
        return LoadedModel(
            role, name, str(version), found.run_id, model, model.window, model.features,
            default_spec().horizons, meta.trained_through, meta.label_end, sha256,
        )  # fmt: skip
