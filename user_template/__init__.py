"""The files copied into a new user folder on the share by `envy init` (this file is not copied)."""
