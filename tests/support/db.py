"""Scratch databases on a test session's database server (tests/support/backends.py).

What is slow to make (a migrated schema, a full feature build) is made once and copied
(``create database ... template``) for each user."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

from warehouse import embedded
from warehouse.db import drop_database as warehouse_drop
from warehouse.db import with_database


def fresh_database(admin_url: str) -> str:
    """A new, empty database on the server of ``admin_url``; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    embedded.ensure_database(admin_url, name)
    return with_database(admin_url, name)


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def copy_database(admin_url: str, template_url: str) -> str:
    """A new database with ``template_url``'s contents.

    Nobody may be connected to a template while it is copied. TimescaleDB's scheduler connects
    to every database that has the extension, and comes back when ended, so the template takes
    no connections while its sessions are ended and the copy is made."""
    name, template = f"t_{uuid.uuid4().hex[:12]}", database_name(template_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        allow = sql.SQL("alter database {} with allow_connections {}")
        conn.execute(allow.format(sql.Identifier(template), sql.SQL("false")))
        try:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                (template,),
            )
            conn.execute(
                # file_copy: the files as they are, where the default (wal_log) writes every page
                # of the template to the write-ahead log again
                sql.SQL("create database {} template {} strategy file_copy").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        finally:
            conn.execute(allow.format(sql.Identifier(template), sql.SQL("true")))
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database of ``url`` (on the server of ``admin_url``), retried while a
    TimescaleDB policy job finishes in it."""
    warehouse_drop(with_database(admin_url, database_name(url)))


def table_rows(url: str, table: str) -> list[tuple]:
    """Every row of ``table``, ordered by its first two columns (for equality checks)."""
    with psycopg.connect(url) as conn:
        return conn.execute(f"select * from {table} order by 1, 2").fetchall()


def password_server(pgdata: Path, password: str) -> str:
    """An embedded server that asks every client for ``password`` (scram-sha-256 instead of the
    usual trust): a client connects only if the password really reaches it. Returns the URL of
    its ``qtis`` database, password included (percent-encoded)."""
    admin_url = embedded.start(pgdata)
    embedded.ensure_database(admin_url, "qtis")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter role postgres password {}").format(sql.Literal(password)))
        (pgdata / "pg_hba.conf").write_text("local all all scram-sha-256\n")
        conn.execute("select pg_reload_conf()")
    for _ in range(200):  # the server rereads its rules a moment after the signal
        try:
            psycopg.connect(admin_url, connect_timeout=5).close()
        except psycopg.OperationalError:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"{pgdata}: the server still lets clients in without a password")
    with_password = admin_url.replace("postgres:@", f"postgres:{quote(password, safe='')}@", 1)
    return with_database(with_password, "qtis")
