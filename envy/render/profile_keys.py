"""The keys of a renderer profile YAML and their validators.

Each validator returns the clean value or raises a one-line ProfileError that
names the key and the file.
"""

from __future__ import annotations

import re
from typing import Any, Callable

OS_NAMES = ("windows", "darwin", "linux")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


class ProfileError(ValueError):
    """A bad renderer profile or an impossible command: one line naming the key and the file."""


# --- validators: each returns the clean value or raises a one-line ProfileError ---------------


def _text(key: str, value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ProfileError(f"{where}: '{key}' must be text, got {value!r}")
    return value


def _name(key: str, value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ProfileError(f"{where}: '{key}' must be a lower-case name like 'vray' or 'my-husk', got {value!r}")
    return value


def _text_list(key: str, value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        # YAML reads an unquoted {output} as a mapping.
        raise ProfileError(f"{where}: '{key}' must be a list of text items; quote items with placeholders: '{{output}}'")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProfileError(f"{where}: '{key}' must be a list of text items, got {value!r}")
    return tuple(value)


def _extensions(key: str, value: Any, where: str) -> tuple[str, ...]:
    items = _text_list(key, value, where)
    if not items or not all(len(ext) > 1 and ext.startswith(".") for ext in items):
        raise ProfileError(f"{where}: '{key}' must list extensions that start with a dot, like ['.ass', '.ass.gz']")
    return tuple(ext.lower() for ext in items)


def _executables(key: str, value: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ProfileError(f"{where}: '{key}' must map {', '.join(OS_NAMES)} to lists of paths or command names")
    out = {}
    for os_name, paths in value.items():
        if os_name not in OS_NAMES:
            raise ProfileError(f"{where}: '{key}.{os_name}' is not an OS; use {', '.join(OS_NAMES)}")
        out[os_name] = (paths,) if isinstance(paths, str) else _text_list(f"{key}.{os_name}", paths, where)
    return out


def _regexes(key: str, value: Any, where: str) -> tuple[str, ...]:
    items = _text_list(key, value, where)
    for i, pattern in enumerate(items):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ProfileError(f"{where}: '{key}[{i}]' is not a valid regular expression ({exc})") from None
        groups = set(compiled.groupindex)
        if key == "progress" and "pct" not in groups and not {"done", "total"} <= groups:
            raise ProfileError(f"{where}: '{key}[{i}]' needs a group (?P<pct>...) or groups (?P<done>...) and (?P<total>...)")
    return items


def _exit_codes(key: str, value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(c, int) and not isinstance(c, bool) for c in value):
        raise ProfileError(f"{where}: '{key}' must be a list of whole numbers, like [0]")
    return tuple(value)


def _ext(key: str, value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) < 2 or not value.startswith("."):
        raise ProfileError(f"{where}: '{key}' must be an extension that starts with a dot, like '.exr', got {value!r}")
    return value.lower()


def _flag(key: str, value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ProfileError(f"{where}: '{key}' must be true or false, got {value!r}")
    return value


_KEYS: dict[str, Callable[[str, Any, str], Any]] = {
    "name": _name,
    "description": _text,
    "extensions": _extensions,
    "executables": _executables,
    "argv": _text_list,
    "range_argv": _text_list,
    "output_arg": _text_list,
    "threads_arg": _text_list,
    "output_ext": _ext,
    "frame_range": _flag,
    "output_next_to_scene": _flag,
    "progress": _regexes,
    "errors": _regexes,
    "ok_exit_codes": _exit_codes,
}
_OPTIONAL = ("ok_exit_codes", "output_arg", "output_ext", "frame_range", "range_argv", "threads_arg", "description",
             "output_next_to_scene")
