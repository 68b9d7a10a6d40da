"""One base for the errors a user can fix: the CLI prints them as one line and exits 2, while any
other exception is a bug and keeps its traceback."""

from __future__ import annotations


class QtisError(Exception):
    """An error in what the user asked or in the order they asked it, not in the code."""


class ConfigError(QtisError):
    """A setting (environment, ``.env`` or option) is unknown or invalid."""


class InputError(QtisError):
    """An argument or a file the user gave cannot be used."""


class MissingStep(QtisError):
    """A step ran before the one it depends on; the message names the command to run first."""
