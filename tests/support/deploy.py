"""Reading the deployment files as Docker Compose and Docker would, without Docker: variable
interpolation, the stages of a Dockerfile, the command a container runs, and parsing that command
with the program's own command-line parser (options, values, types) without running it."""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import typer
import yaml

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


def variables(text: str) -> set[str]:
    """The names a compose file interpolates."""
    return set(VARIABLE.findall(text))


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """``value`` (any YAML node) with every ``${NAME...}`` replaced by ``env[NAME]``."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: env[m.group(1)], value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (comments and blank lines skipped)."""
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {name.strip(): value.strip() for name, value in pairs}


def load_compose(path: Path, env: dict[str, str]) -> dict:
    """The compose file with its variables interpolated (YAML anchors and merges resolved)."""
    return interpolate(yaml.safe_load(path.read_text()), env)


@dataclass
class Stage:
    """One ``FROM ... AS name`` stage: its base (an image or an earlier stage) and instructions."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        found = [arg for kw, arg in self.instructions if kw == keyword]
        return found[-1] if found else None


def dockerfile_stages(path: Path) -> dict[str, Stage]:
    """The named stages of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arg = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = re.sub(r"--platform=\S+\s+", "", arg).partition(" AS ")
            current = Stage(name.strip() or base.strip(), base.strip())
            stages[current.name] = current
        elif current is not None:
            current.instructions.append((keyword, arg.strip()))
    return stages


def _exec_form(arg: str | None) -> list[str] | None:
    if arg is None:
        return None
    return json.loads(arg) if arg.startswith("[") else ["/bin/sh", "-c", arg]


def image_command(stages: dict[str, Stage], target: str) -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD a stage's image ends up with, inherited from the stages below it (a
    stage that sets ENTRYPOINT resets the CMD it inherited, as Docker does)."""
    chain = []
    stage: Stage | None = stages[target]
    while stage is not None:
        chain.append(stage)
        stage = stages.get(stage.base)
    entrypoint: list[str] = []
    cmd: list[str] = []
    for stage in reversed(chain):
        if (own := _exec_form(stage.last("ENTRYPOINT"))) is not None:
            entrypoint, cmd = own, []
        if (own := _exec_form(stage.last("CMD"))) is not None:
            cmd = own
    return entrypoint, cmd


def container_command(service: dict, stages: dict[str, Stage]) -> list[str]:
    """What a compose service built from ``stages`` runs: its entrypoint and command."""
    entrypoint, cmd = image_command(stages, service["build"]["target"])
    if "entrypoint" in service:
        entrypoint, cmd = _as_list(service["entrypoint"]), []
    if "command" in service:
        cmd = _as_list(service["command"])
    return entrypoint + cmd


def _as_list(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else list(value)


def cli_of(program: str):
    """The command-line parser behind an installed console script (click or Typer)."""
    (script,) = entry_points(group="console_scripts", name=program)
    loaded = script.load()
    if isinstance(loaded, typer.Typer):
        return typer.main.get_command(loaded)
    if hasattr(loaded, "make_context"):
        return loaded
    return sys.modules[loaded.__module__].cli  # a main() that calls the module's click group


def parse(argv: list[str]) -> str:
    """Parse ``argv`` with its program's own parser, subcommand by subcommand, as running it
    would, without running it; returns the command path (``qtis trade paper``). A wrong
    subcommand, option or value raises the parser's usage error (``exit_code`` 2)."""
    program, *args = argv
    if program == "python" and args[:1] == ["-m"]:
        program, *args = args[1:]
    command, path = cli_of(program), program
    while True:
        context = command.make_context(path, list(args))
        if not hasattr(command, "resolve_command"):
            return path
        name, command, args = command.resolve_command(
            context, [*context._protected_args, *context.args]
        )
        path = f"{path} {name}"
