"""The lowest layer: the settings base every package's settings derive from, and the error base
of every user-facing error. Imports nothing from the project."""
