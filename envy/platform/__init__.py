"""Envy platform."""
