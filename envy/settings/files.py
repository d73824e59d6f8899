"""Reading a settings file's text as YAML: one error class, one line, whatever the bytes."""

from __future__ import annotations

from typing import Any

import yaml


def parse_yaml(text: str, where: str, error: type[Exception]) -> Any:
    """The document in ``text``; broken or absurdly nested YAML is ``error`` naming ``where``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise error(f"{where}:{line} is not valid YAML ({problem})") from None
    except RecursionError:  # e.g. thousands of nested [ ]: the parser recurses per level
        raise error(f"{where}: nested too deeply to be a settings file") from None
