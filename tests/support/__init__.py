"""Helpers shared by the test suite: databases, bars, the CLI, hand-made trading books and bars.

Test modules and conftest files import from here, never from each other, so a test file can move
without breaking another."""
