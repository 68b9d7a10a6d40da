"""``qtis db``: the Postgres warehouse (embedded unless QTIS_DATABASE_URL is set)."""

from __future__ import annotations

import os

import typer

from cli.common import console, fail, ready_url
from cli.render.storage import render_storage
from core.secrets import redact
from warehouse import embedded
from warehouse.db import database_url, split_password
from warehouse.schema import bars_storage, current_revision, head_revision
from warehouse.settings import get_settings
from warehouse.storage import storage_report

db_app = typer.Typer(
    help="The Postgres warehouse (embedded unless QTIS_DATABASE_URL is set).", no_args_is_help=True
)


@db_app.command("up")
def db_up() -> None:
    """Start the embedded server (if used) and apply schema migrations."""
    settings = get_settings()
    url = ready_url()
    where = settings.pgdata if settings.uses_embedded else "external server"
    console.print(f"[green]database ready[/] ({where}); market.bars storage: {bars_storage(url)}")
    console.print(f"url: {redact(url)}")


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded server."""
    settings = get_settings()
    if not settings.uses_embedded:
        raise fail("QTIS_DATABASE_URL is set: QTIS does not manage that server")
    stopped = embedded.stop(settings.pgdata)
    console.print("stopped" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Is the database up, where is it, which schema revision."""
    settings = get_settings()
    if settings.uses_embedded:
        state = embedded.status(settings.pgdata)
        if not state.running:
            console.print(f"embedded server: [yellow]stopped[/] (data dir {state.pgdata})")
            raise typer.Exit(1)
        console.print(
            f"embedded server: [green]running[/] pid {state.pid}, data dir {state.pgdata}"
        )
    url = database_url(settings)
    console.print(f"url: {redact(url)}")
    console.print(f"schema revision: {current_revision(url)} (head {head_revision()})")
    render_storage(console, storage_report(url, bars_storage(url)))


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (for psql, SQLAlchemy, notebooks)."""
    print(database_url(get_settings()))


@db_app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def db_psql(ctx: typer.Context) -> None:
    """Open psql on the QTIS database (extra arguments go to psql)."""
    url, password = split_password(database_url(get_settings()))
    psql = str(embedded.psql_path())
    os.execve(psql, [psql, url, *ctx.args], os.environ | password)
