"""What every ``qtis`` subcommand shares: the consoles, the error exit, a ready database."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from warehouse.db import database_url
from warehouse.schema import migrate
from warehouse.settings import get_settings
from warehouse.storage import configure_storage

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # paths stay whole
    return typer.Exit(code)


def ready_url() -> str:
    """Database URL with the server started, the schema migrated and the storage settings
    (TimescaleDB's policies) applied."""
    try:
        settings = get_settings()
        url = database_url(settings)
        migrate(url)
        configure_storage(url, settings)
    except ConnectionError as exc:
        raise fail(str(exc)) from exc
    return url


def write_json(path: Path, payload: Any, note: str = "", indent: int = 2, **show: Any) -> None:
    """Write ``payload`` as JSON (what JSON cannot hold as text), making the folder, and say so
    (``note`` after the path; ``show``: options of ``console.print``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=indent, default=str))
    console.print(f"wrote {path}{note}", **show)


def option_group(*specs: tuple[str, Any, Any]) -> list[inspect.Parameter]:
    """(name, annotation, default) triples -> the parameters ``shared_options`` adds."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return [inspect.Parameter(name, kind, default=value, annotation=a) for name, a, value in specs]


def shared_options(after: str | None, options: Sequence[inspect.Parameter]) -> Callable:
    """Declare options that several commands take once: they join the command's parameters
    after ``after`` (None: first; typer reads the signature, so ``--help`` lists them there)
    and reach the command in its ``**shared`` keyword arguments."""

    def decorate(command: Callable) -> Callable:
        own = inspect.signature(command, eval_str=True).parameters.values()
        params = [p for p in own if p.kind != p.VAR_KEYWORD]
        at = 0 if after is None else [p.name for p in params].index(after) + 1

        @functools.wraps(command)
        def run(**given: Any) -> Any:
            return command(**given)

        run.__signature__ = inspect.Signature([*params[:at], *options, *params[at:]])
        return run

    return decorate
