"""What every ``qtis`` subcommand shares: the consoles, the error exit, a ready database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def write_json(path: Path, payload: Any, note: str = "", indent: int = 2, **show: Any) -> None:
    """Write ``payload`` as JSON (what JSON cannot hold as text), making the folder, and say so
    (``note`` after the path; ``show``: options of ``console.print``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=indent, default=str))
    console.print(f"wrote {path}{note}", **show)
