"""One place that turns settings into a live database URL and connections."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from core.secrets import MASK, redact
from warehouse import embedded
from warehouse.settings import WarehouseSettings


def with_database(url: str, name: str) -> str:
    """Return ``url`` pointing at database ``name`` (query string such as ``host=`` kept)."""
    parts = urlsplit(url)
    if not parts.netloc:  # postgresql:///db?host=...: urlunsplit would drop the "//"
        return f"{parts.scheme}://" + urlunsplit(parts._replace(scheme="", path=f"/{name}"))
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_url(settings: WarehouseSettings) -> str:
    """URL of the QTIS database, starting the embedded server and creating the DB if needed."""
    if settings.database_url:
        return settings.database_url
    admin = embedded.start(settings.pgdata)
    embedded.ensure_database(admin, settings.database_name)
    return with_database(admin, settings.database_name)


def recreate_database(name: str, settings: WarehouseSettings) -> str:
    """An empty database ``name`` on the QTIS server, dropping any old one: scratch space for
    benchmarks, which must not touch the user's data."""
    url = with_database(database_url(settings), name)
    drop_database(url)
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return url


def drop_database(url: str, attempts: int = 5) -> None:
    """Drop the database of ``url``, its sessions ended. ``force`` ends client sessions but
    not a TimescaleDB policy job at work in it, which the server ends a moment later: then
    it is tried again, a second apart."""
    name = urlsplit(url).path.lstrip("/")
    statement = sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        for attempt in range(attempts):
            try:
                conn.execute(statement)
                return
            except psycopg.errors.ObjectInUse:
                if attempt == attempts - 1:
                    raise
                time.sleep(1)


def companion_database(url: str, name: str, purpose: str, override_env: str) -> str:
    """SQLAlchemy URL of database ``name`` beside the warehouse on the same server (created if
    missing): where MLflow and Optuna keep their own tables."""
    try:
        embedded.ensure_database(with_database(url, "postgres"), name)
    except Exception as exc:  # e.g. no CREATEDB right on a managed server
        raise ConnectionError(
            f"cannot create database {name!r} for {purpose} ({exc}); "
            f"create it or set {override_env}"
        ) from exc
    return sqlalchemy_url(with_database(url, name))


def sqlalchemy_url(url: str) -> str:
    """The same database as a SQLAlchemy URL using the psycopg 3 driver."""
    scheme, rest = url.split("://", 1)
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    raise ValueError(f"QTIS_DATABASE_URL must be a postgresql:// URL, got scheme {scheme!r}")


@contextmanager
def exclusive(url: str, name: str) -> Iterator[None]:
    """Run the body while holding the advisory lock ``name`` on the database of ``url`` (libpq or
    SQLAlchemy form): processes on several machines that open a fresh MLflow or Optuna store at
    once then create its tables one after another instead of colliding in the catalog. A URL
    that is not Postgres (an MLflow server, SQLite) runs the body without a lock."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        yield
        return
    with connect(f"postgresql://{rest}", autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtext(%s))", (name,))
        yield  # closing the connection releases the lock


def split_password(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its password, and the environment that carries the password to a child
    process instead: ``PGPASSWORD``, which libpq reads (so psql, psycopg and SQLAlchemy on
    psycopg). Anyone on the machine can read a command line (``ps``); an environment, only the
    process's owner. A password in the query string (``?password=``) wins, as in libpq."""
    parts = urlsplit(url)
    params, written = _query_passwords(parts.query)
    found = [unquote(raw) for raw in [parts.password, *written] if raw is not None]
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}@{host}"
    # put together by hand: urlunsplit drops the "//" of postgresql:///db
    bare = f"{parts.scheme}://{netloc}{parts.path}"
    if params:
        bare += "?" + "&".join(params)
    if parts.fragment:
        bare += f"#{parts.fragment}"
    return bare, ({"PGPASSWORD": found[-1]} if found and found[-1] else {})


def _query_passwords(query: str) -> tuple[list[str], list[str]]:
    """A URL query string's other parameters, and its password values (as written)."""
    params, passwords = [], []
    for param in query.split("&") if query else []:
        key, _, value = param.partition("=")
        if unquote(key) == "password":
            passwords.append(value)
        else:
            params.append(param)
    return params, passwords


def connect(url: str, **kwargs) -> psycopg.Connection:
    """Connect with a clear message when the server is unreachable."""
    try:
        return psycopg.connect(url, **kwargs)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # unreachable, unreadable
        raise unreachable(url, exc) from exc


def unreachable(url: str, exc: Exception) -> ConnectionError:
    """The error every connection path raises when the server cannot be reached or the URL not
    read. It never repeats the password, which libpq may quote (``invalid percent-encoded
    token: "..."``)."""
    reason = str(exc).strip()
    for secret in sorted(_passwords(url), key=len, reverse=True):
        reason = reason.replace(secret, MASK)
    return ConnectionError(
        f"cannot connect to Postgres at {redact(url)}: {redact(reason)}".strip()
        + "\nCheck QTIS_DATABASE_URL, or unset it to use the embedded server (`qtis db up`)."
    )


def _passwords(url: str) -> set[str]:
    """Every form in which ``url`` holds a password: as written and percent-decoded."""
    parts = urlsplit(url)
    written = [parts.password or "", *_query_passwords(parts.query)[1]]
    return {form for raw in written if raw for form in (raw, unquote(raw))}
