"""The keys of a renderer profile YAML: each one's kind of value, default and help, once.

``RendererProfile`` (envy/render/profiles.py) declares its fields with these
kinds; this module holds the kinds and checks that are particular to
profiles. Every error is a one-line ProfileError naming the key and the file.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from envy.settings.kinds import (
    Checked,
    Flag,
    Kind,
    Record,
    Source,
    Text,
    TextList,
    WholeList,
)
from envy.settings.schema import Key, Schema

OS_NAMES = ("windows", "darwin", "linux")
_NAME_RE = r"^[a-z][a-z0-9_-]*$"


class ProfileError(ValueError):
    """A bad renderer profile or an impossible command: one line naming the key and the file."""


def _extensions(value: tuple[str, ...], key: str, source: Source) -> tuple[str, ...]:
    if not value or not all(len(ext) > 1 and ext.startswith(".") for ext in value):
        source.fail(key, "must list extensions that start with a dot, like ['.ass', '.ass.gz']")
    return tuple(ext.lower() for ext in value)


def _ext(value: str, key: str, source: Source) -> str:
    if len(value) < 2 or not value.startswith("."):
        source.fail(key, f"must be an extension that starts with a dot, like '.exr', got {value!r}")
    return value.lower()


def _patterns(progress: bool) -> Any:
    def check(items: tuple[str, ...], key: str, source: Source) -> tuple[str, ...]:
        for i, pattern in enumerate(items):
            try:
                compiled = re.compile(pattern)
            except (re.error, RecursionError, OverflowError) as exc:
                source.fail(f"{key}[{i}]", f"is not a valid regular expression ({exc})")
            groups = set(compiled.groupindex)
            if progress and "pct" not in groups and not {"done", "total"} <= groups:
                source.fail(f"{key}[{i}]", "needs a group (?P<pct>...) or groups (?P<done>...) and (?P<total>...)")
        return items
    return check


NAME: Kind = Text("a lower-case name like 'vray' or 'my-husk'", pattern=_NAME_RE)
DESCRIPTION: Kind = Text()
EXTENSIONS: Kind = Checked(TextList(), _extensions, "a list of extensions that start with a dot, like ['.ass']")
ARGV: Kind = TextList("a list of text items", placeholder_hint=True)
PATHS = TextList("a path or command name, or a list of them", single_ok=True, placeholder_hint=True)
EXECUTABLES: Kind = Checked(
    Record(Schema("executables", [Key(os_name, PATHS, (), f"Candidates on {os_name}, first found wins; "
                                  "globs pick the newest version.") for os_name in OS_NAMES], ProfileError),
           f"a mapping of {', '.join(OS_NAMES)} to lists of paths or command names"),
    lambda value, key, source: MappingProxyType(dict(value)),
)
OUTPUT_EXT: Kind = Checked(Text("an extension that starts with a dot, like '.exr'"), _ext)
# A renderer's own word for an image format (Blender's PNG, OPEN_EXR, JPEG...): letters, digits and _.
FORMAT_WORD: Kind = Text("a format word like 'PNG' or 'OPEN_EXR'", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
FLAG: Kind = Flag()
PROGRESS: Kind = Checked(TextList("a list of regular expressions with (?P<pct>...) or (?P<done>...) and "
                                  "(?P<total>...)"), _patterns(progress=True))
ERRORS: Kind = Checked(TextList("a list of regular expressions"), _patterns(progress=False))
EXIT_CODES: Kind = WholeList()
