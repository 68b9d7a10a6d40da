"""The Dagster instance that `qtis demo`, `qtis ui` and Dagster's daemon share: ``DAGSTER_HOME``
if set, else ``<QTIS_HOME>/dagster``.

On the embedded database runs stay in local files under that directory. On an external server
(``QTIS_DATABASE_URL``) the instance is ``deploy/dagster/dagster.yaml``: runs, event logs and
schedules in the database ``dagster`` beside the warehouse, a run queue with limits, run
monitoring. That file reads its connection through Dagster's ``env:`` from ``DAGSTER_PG_*``
variables, which :func:`dagster_home` exports from the warehouse URL: the password is never
written into a file or onto a command line."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from core.errors import ConfigError
from orchestration.settings import DagsterSettings
from warehouse.db import companion_database, connect
from warehouse.settings import WarehouseSettings

SERVICE_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster" / "dagster.yaml"
EMBEDDED_YAML = """\
telemetry:
  enabled: false
"""
# the first line of every dagster.yaml QTIS writes: while it is there the file follows
# QTIS_DATABASE_URL; without it the file is the user's own and left alone
OWNED = "# written by qtis (orchestration/instance.py); remove this line to keep your own edits\n"
# libpq reads these where a connection string leaves the parameter out
# (https://www.postgresql.org/docs/current/libpq-envars.html); Dagster's postgres_db has no field
# for them, so a parameter of QTIS_DATABASE_URL's query string reaches it this way
LIBPQ_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
}


def dagster_home(settings: WarehouseSettings) -> Path:
    """The instance directory, its ``dagster.yaml`` chosen by where the warehouse is, and
    ``DAGSTER_HOME`` (with ``DAGSTER_PG_*`` on an external server) set in this process's
    environment, which the Dagster processes it starts inherit."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if _ours(config):
        config.write_text(OWNED + (EMBEDDED_YAML if settings.uses_embedded else _service_yaml()))
        if settings.database_url:
            os.environ.update(service_environment(settings.database_url))
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def storage(home: Path) -> str:
    """Where the instance at ``home`` keeps its runs, in words, for what ``qtis ui`` prints."""
    config = home / "dagster.yaml"
    if not _ours(config):
        return f"as your own {config} says"
    if "postgres:" in config.read_text():
        return f"in Postgres, database {os.environ.get('DAGSTER_PG_DB')!r} beside the warehouse"
    return f"in local files under {home}"


def _ours(config: Path) -> bool:
    """Whether QTIS may (re)write ``config``: missing, marked, or the one earlier versions wrote."""
    if not config.exists():
        return True
    text = config.read_text()
    return text.startswith(OWNED) or text == EMBEDDED_YAML


def _service_yaml() -> str:
    if not SERVICE_YAML.exists():
        raise ConfigError(
            f"{SERVICE_YAML} is missing (it ships with the QTIS repository): run from a checkout,"
            " or set DAGSTER_HOME to a directory with your own dagster.yaml"
        )
    return SERVICE_YAML.read_text()


def service_environment(warehouse_url: str) -> dict[str, str]:
    """What deploy/dagster/dagster.yaml reads: the database ``dagster`` (QTIS_DAGSTER_DATABASE,
    created if missing) on the warehouse's server, as ``DAGSTER_PG_*`` and libpq variables."""
    name = DagsterSettings().database
    connect(warehouse_url).close()  # an unreachable server: the error that never shows a password
    url = companion_database(warehouse_url, name, "Dagster", "QTIS_DAGSTER_DATABASE")
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    password = query.pop("password", None) or unquote(parts.password or "")
    host = parts.hostname or ""
    env = {
        "DAGSTER_PG_USERNAME": query.pop("user", None) or unquote(parts.username or ""),
        "DAGSTER_PG_PASSWORD": password,
        "DAGSTER_PG_HOST": f"[{host}]" if ":" in host else host,
        "DAGSTER_PG_PORT": query.pop("port", None) or str(parts.port or 5432),
        "DAGSTER_PG_DB": name,
    }
    if "host" in query:  # wins over the URL's host in libpq; a Unix socket directory goes here
        env["DAGSTER_PG_HOST"] = ""
    unknown = sorted(set(query) - set(LIBPQ_ENV))
    if unknown:
        raise ConfigError(
            f"QTIS_DATABASE_URL: Dagster's storage cannot take the parameter(s) {unknown}; use"
            f" {', '.join(LIBPQ_ENV)}, or your own dagster.yaml in DAGSTER_HOME"
        )
    return env | {LIBPQ_ENV[key]: value for key, value in query.items()}
