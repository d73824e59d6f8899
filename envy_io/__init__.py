"""Envy IO: the interactive shell and the scripting commands that write to the share."""
