"""Envy render."""
