"""Envy: a render farm that needs no server, only a shared network drive."""

__version__ = "0.1.0"
