"""Drift, decay and what to do about them: the checks the sensors act on."""
