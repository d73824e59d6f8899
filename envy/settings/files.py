"""Reading a settings file's text as YAML: one error class, one line, whatever the bytes."""

from __future__ import annotations

from typing import Any

import yaml

from envy.share.bounded import SAFE_LOADER, ShareFileError, check_yaml_shape


def parse_yaml(text: str, where: str, error: type[Exception]) -> Any:
    """The document in ``text``; broken or absurdly nested YAML is ``error`` naming ``where``.

    Aliases (``*name``: a few hundred bytes that expand to gigabytes when walked),
    nesting deeper than 32 and huge documents are refused before loading (Must-hold 5).
    """
    try:
        check_yaml_shape(text, where)
    except ShareFileError as exc:
        raise error(str(exc)) from None
    try:
        return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader (C or Python)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise error(f"{where}:{line} is not valid YAML ({problem})") from None
    except RecursionError:  # e.g. thousands of nested [ ]: the parser recurses per level
        raise error(f"{where}: nested too deeply to be a settings file") from None
