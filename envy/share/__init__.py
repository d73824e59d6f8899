"""Envy share."""
