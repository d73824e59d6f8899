"""Envy protocol."""
