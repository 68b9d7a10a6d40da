"""The one way QTIS is configured. Every package's settings derive from :class:`QtisSettings`:
each reads the environment and ``.env`` under its own prefix, is frozen once built (an entry point
builds it and passes it down), and can say where each value came from (``qtis config show``).
A ``QTIS_`` key that no settings class knows, a typo mostly, is refused by
:func:`check_environment` at the entry point instead of being silently ignored."""

from __future__ import annotations

import difflib
import importlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.errors import ConfigError
from core.secrets import MASK, redact

PREFIX = "QTIS_"
ENV_FILE = ".env"
# QTIS_ names read outside settings classes: dbt's profile (transforms/dbt/profiles.yml), which
# transforms.dbt_runner fills in for its dbt subprocess
OTHER_KEYS = frozenset(
    f"QTIS_DBT_{name}" for name in ("HOST", "PORT", "USER", "PASSWORD", "DBNAME", "THREADS")
)
# every package's settings module, by name: core sits below them, and an entry point of any
# layer (the CLI, the Dagster code location, the Bento service) checks the environment against
# all of them, since they share one environment and one .env
SETTINGS_MODULES = (
    "warehouse.settings",
    "transforms.settings",
    "training.settings",
    "serving.settings",
    "trading_runtime.settings",
    "trading_runtime.analytics.conventions",
    "monitoring.settings",
    "orchestration.settings",
)
SECRET_NAMES = re.compile(r"(^|_)(token|password|secret)$")

_registry: dict[str, type[QtisSettings]] = {}


class _FieldsOnlyDotEnv(DotEnvSettingsSource):
    """``.env`` as the environment is read: only this class's keys. The file is shared by every
    settings class, so the other classes' keys are not extras of this one."""

    def __call__(self) -> dict[str, Any]:
        return EnvSettingsSource.__call__(self)


@dataclass(frozen=True)
class Setting:
    """One line of ``qtis config show``."""

    env: str
    value: str
    source: str  # default | env | .env | argument
    description: str
    group: str  # the settings class
    aliases: tuple[str, ...] = ()  # older names that still work


class QtisSettings(BaseSettings):
    """Base of every settings class. Subclasses set ``env_prefix`` (their own) and give each
    field a description; a renamed variable keeps its old name as a second
    ``AliasChoices`` entry, the first being the name shown."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE, extra="forbid", frozen=True, populate_by_name=True
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _registry[f"{cls.__module__}.{cls.__qualname__}"] = cls

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        dotenv = _FieldsOnlyDotEnv(settings_cls, env_file=cls.model_config.get("env_file"))
        return init_settings, env_settings, dotenv, file_secret_settings

    @classmethod
    def env_names(cls, field: str) -> tuple[str, ...]:
        """The variables that set ``field``, the current name first."""
        alias = cls.model_fields[field].validation_alias
        if isinstance(alias, AliasChoices):
            return tuple(c.upper() for c in alias.choices if isinstance(c, str))
        if isinstance(alias, str):
            return (alias.upper(),)
        return ((cls.model_config.get("env_prefix", "") + field).upper(),)


def describe(
    settings: QtisSettings,
    environ: Mapping[str, str] | None = None,
    dotenv: Mapping[str, Any] | None = None,
) -> Iterator[Setting]:
    """Every field of ``settings`` with its variable, value (secrets masked), where the value
    came from and what it means. A function, not a method: ``Conventions.describe`` exists."""
    cls = type(settings)
    environ = _upper(os.environ if environ is None else environ)
    dotenv = _upper(_read_dotenv() if dotenv is None else dotenv)
    for name, field in cls.model_fields.items():
        names = cls.env_names(name)
        if any(n in environ for n in names):
            source = "env"
        elif any(n in dotenv for n in names):
            source = ".env"
        else:
            source = "argument" if name in settings.model_fields_set else "default"
        yield Setting(
            env=names[0],
            value=_shown(getattr(settings, name), secret=_is_secret(name, field)),
            source=source,
            description=field.description or "",
            group=cls.__name__,
            aliases=names[1:],
        )


def _upper(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k.upper(): v for k, v in values.items()}


def _read_dotenv(path: str | Path = ENV_FILE) -> dict[str, Any]:
    return dict(dotenv_values(path)) if Path(path).is_file() else {}


def _is_secret(name: str, field: FieldInfo) -> bool:
    """Tokens, passwords, ``SecretStr`` and fields marked ``json_schema_extra={"secret": True}``
    (e.g. a webhook URL, whose path is its key)."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return bool(SECRET_NAMES.search(name) or field.annotation is SecretStr or extra.get("secret"))


def _shown(value: Any, secret: bool) -> str:
    """A value as ``config show`` prints it: secrets masked, passwords cut out of connection
    strings."""
    if value is None:
        return ""
    if secret or isinstance(value, SecretStr):
        return MASK
    structured = isinstance(value, tuple | list | dict)
    text = json.dumps(value, default=str) if structured else str(value)
    return redact(text)


def registered() -> list[type[QtisSettings]]:
    """Every settings class imported so far (:func:`every_class` imports them all first)."""
    return list(_registry.values())


def every_class() -> list[type[QtisSettings]]:
    """Every settings class of QTIS: the modules of :data:`SETTINGS_MODULES` imported by name
    (core sits below them all). A deployment that ships only some packages (the Bento carries
    serving and what is below it) checks the settings of the packages it has."""
    for module in SETTINGS_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not module.startswith(f"{exc.name}.") and exc.name != module:
                raise
    return registered()


def known_keys(classes: Iterable[type[QtisSettings]] | None = None) -> frozenset[str]:
    """Every ``QTIS_`` variable something reads: the settings' names and aliases, and dbt's."""
    names = {
        env
        for cls in (registered() if classes is None else classes)
        for field in cls.model_fields
        for env in cls.env_names(field)
    }
    return frozenset(names) | OTHER_KEYS


def check_environment(
    environ: Mapping[str, str] | None = None,
    env_file: str | Path = ENV_FILE,
    classes: Iterable[type[QtisSettings]] | None = None,
) -> None:
    """Refuse ``QTIS_`` keys of the environment or ``.env`` that no setting reads, naming the
    closest known ones: a misspelt variable would otherwise leave its default in force. Each
    entry point calls it once; ``classes`` defaults to :func:`every_class`."""
    given = set(_upper(os.environ if environ is None else environ)) | set(
        _upper(_read_dotenv(env_file))
    )
    known = known_keys(every_class() if classes is None else classes)
    unknown = sorted(k for k in given if k.startswith(PREFIX) and k not in known)
    if not unknown:
        return
    problems = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        problems.append(f"unknown setting {key}{hint}")
    raise ConfigError("; ".join(problems) + "; `qtis config show` lists every setting")


def describe_all(
    settings: Iterable[QtisSettings],
    environ: Mapping[str, str] | None = None,
    dotenv: Mapping[str, Any] | None = None,
) -> list[Setting]:
    """Every setting of ``settings`` (one built instance per class), in their order."""
    return [line for s in settings for line in describe(s, environ, dotenv)]


def to_json(lines: Iterable[Setting]) -> str:
    return json.dumps([asdict(line) for line in lines], indent=2)


def to_markdown(lines: Iterable[Setting]) -> str:
    """The configuration table of docs/configuration.md: a section per settings class."""
    out: list[str] = []
    group = None
    for line in lines:
        if line.group != group:
            group = line.group
            out += [f"### {group}", "", "| Variable | Default | Meaning |", "|---|---|---|"]
        value = f"`{line.value}`" if line.value else ""
        meaning = line.description.replace("|", "\\|")
        also = "".join(f" (or `{alias}`)" for alias in line.aliases)
        out.append(f"| `{line.env}`{also} | {value} | {meaning} |")
    return "\n".join(out).replace("\n### ", "\n\n### ") + "\n"
