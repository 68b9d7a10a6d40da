"""How the ``qtis`` command line ends on a user's error: a :class:`QtisError` (a step run out of
order, an unknown setting, an unusable input) is one line on stderr and exit code 2, like the
errors commands report themselves; any other exception is a bug and keeps its traceback."""

from __future__ import annotations

import typer
from rich.console import Console
from typer.core import TyperGroup

from core.errors import QtisError
from core.settings import check_environment

err = Console(stderr=True)


class QtisGroup(TyperGroup):
    """The root command group (``typer.Typer(cls=QtisGroup)``): it refuses unknown ``QTIS_``
    variables before any command runs and turns a ``QtisError`` into exit code 2."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            check_environment()
            return super().invoke(ctx)
        except QtisError as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)  # paths stay whole
            raise typer.Exit(2) from exc
