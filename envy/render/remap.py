"""Path remapping between the OSes of a mixed lab: ``--remap "P:/,/mnt/renders/"``.

A job written on Windows names ``P:\\shot\\a.vrscene``; a Linux agent must open
``/mnt/renders/shot/a.vrscene``. Rules match a path prefix case-insensitively,
treat ``/`` and ``\\`` alike (drive letters and UNC ``\\\\server\\share`` too),
try the longest prefix first, and write the result with the separators of the
agent's OS. A path that no rule matches only has its separators normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from envy.render.profiles import OS_NAMES, current_os


class RemapError(ValueError):
    """A bad --remap rule or target OS; the message is one line."""


@dataclass(frozen=True)
class PathRemap:
    rules: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, specs: Sequence[str]) -> PathRemap:
        """Rules from ``FROM,TO`` specs; exactly one comma separates the two paths."""
        rules = []
        for spec in specs:
            if not isinstance(spec, str) or spec.count(",") != 1:
                raise RemapError(
                    f'remap rule {spec!r} must be FROM,TO with exactly one comma, e.g. "P:/,/mnt/renders/"'
                )
            source, target = (part.strip() for part in spec.split(","))
            if not source or not target:
                raise RemapError(
                    f'remap rule {spec!r} needs a path on both sides of the comma, e.g. "P:/,/mnt/renders/"'
                )
            rules.append((source, target))
        return cls(tuple(rules))

    def apply(self, path: str, target_os: str | None = None) -> str:
        """``path`` as the agent on ``target_os`` (default: this machine) must write it."""
        target_os = target_os or current_os()
        if target_os not in OS_NAMES:
            raise RemapError(f"unknown target OS {target_os!r}; use one of {', '.join(OS_NAMES)}")
        unified = path.replace("\\", "/")
        result = path
        for source, target in sorted(self.rules, key=lambda rule: len(_prefix(rule[0])), reverse=True):
            prefix = _prefix(source)
            head, rest = unified[: len(prefix)], unified[len(prefix) :]
            if head.lower() == prefix.lower() and (not rest or rest.startswith("/")):
                result = _join(target, rest)
                break
        if target_os == "windows":
            return result.replace("/", "\\")
        return result.replace("\\", "/")


def _prefix(path: str) -> str:
    """A rule's FROM with forward slashes and no trailing slash, so ``P:/`` and ``p:`` match alike."""
    return path.replace("\\", "/").rstrip("/")


def _join(target: str, rest: str) -> str:
    """``target`` + ``rest`` (which is empty or starts with "/") with one separator between."""
    if not rest:
        return target
    base = target.replace("\\", "/").rstrip("/")
    return base + rest if base else rest
