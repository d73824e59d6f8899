"""Settings keys described once: kinds of values (kinds.py), keys and schemas (schema.py), and the
generated key reference, docs/config-reference.md (reference.py)."""
