"""What every ``qtis`` subcommand shares: the consoles, the error exit, a ready database."""

from __future__ import annotations

import typer
from rich.console import Console

from warehouse.db import database_url
from warehouse.schema import migrate

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # paths stay whole
    return typer.Exit(code)


def ready_url() -> str:
    """Database URL with the server started and the schema migrated."""
    try:
        url = database_url()
        migrate(url)
    except ConnectionError as exc:
        raise fail(str(exc)) from exc
    return url
