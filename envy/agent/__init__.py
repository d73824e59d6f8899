"""Envy agent."""
