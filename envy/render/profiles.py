"""Renderer profiles: how to find a renderer, build its command line and read its output.

A profile is data (one YAML file per renderer, see ``builtin_profiles/`` and
``docs/renderers.md``), so a studio can add or override a renderer without code.

Command lines are argv lists. Each template item is filled with
``str.format_map`` on its own, so a scene path with spaces, quotes or
``; rm -rf /`` stays one argv item, verbatim; nothing here ever builds a shell
string.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import re
import shutil
import string
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from envy.render import profile_keys as keys
from envy.render.profile_keys import OS_NAMES, ProfileError
from envy.settings.files import parse_yaml
from envy.settings.schema import REQUIRED, schema_of, setting
from envy.share.bounded import FileTrust, ShareFileError, read_config_file

# OS_NAMES and ProfileError are part of this module's interface (remap.py, callers).
__all__ = ["OS_NAMES", "ProfileError", "RendererProfile", "builtin_profiles", "current_os", "load_profiles",
           "parse_profile", "profile_for_file"]

log = logging.getLogger(__name__)


# Values command() fills in. {count} is end - start + 1 (husk wants a frame count, not an end frame).
PLACEHOLDERS = frozenset({"scene", "output", "output_dir", "output_stem", "output_format", "frame", "start", "end",
                          "count", "threads"})
_OUTPUT_PLACEHOLDERS = frozenset({"output", "output_dir", "output_stem"})

# Whole argv items that say where output_arg / threads_arg go; without them they are appended.
# Blender needs this: it runs its arguments in order, so "-o" after "-f 1" would be ignored.
OUTPUT_MARK = "{output_arg}"
THREADS_MARK = "{threads_arg}"
_MARKS = {OUTPUT_MARK, THREADS_MARK}

# Sample values used to check a template's format specs (e.g. {frame:04d}) at load time.
_SAMPLE = {
    "scene": "scene.ext", "output": "out.png", "output_dir": "out", "output_stem": "out", "output_format": "PNG",
    "frame": 1, "start": 1, "end": 2, "count": 2, "threads": 1,
}


def current_os() -> str:
    """This machine as an ``executables`` key: "windows", "darwin" or "linux"."""
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"


@dataclass(frozen=True)
class RendererProfile:
    """One renderer, as its YAML file describes it. Each key is declared once, here."""

    name: str = setting(REQUIRED, keys.NAME, "Lower-case name (a-z, digits, -, _), used in config and job files.")
    extensions: tuple[str, ...] = setting(
        REQUIRED, keys.EXTENSIONS,
        "Scene file extensions with the dot, any case; compound ones allowed (.ass.gz); the longest match wins.")
    argv: tuple[str, ...] = setting(
        REQUIRED, keys.ARGV, "The arguments after the executable, for a still or one frame. Must use {scene}.")
    executables: Mapping[str, tuple[str, ...]] = setting(  # read-only once loaded
        MappingProxyType({}), keys.EXECUTABLES,
        "windows, darwin, linux: paths, globs or command names to try in order.", hash=False)
    progress: tuple[str, ...] = setting(
        (), keys.PROGRESS, "Each needs a group (?P<pct>...) (0-100), or groups (?P<done>...) and (?P<total>...).")
    errors: tuple[str, ...] = setting(
        (), keys.ERRORS, "A line matching one means the render failed, whatever the exit code.")
    ok_exit_codes: tuple[int, ...] = setting((0,), keys.EXIT_CODES, "Exit codes that mean success.")
    output_arg: tuple[str, ...] = setting(
        (), keys.ARGV, "Added when the job has an output path; must use {output}, {output_dir} or {output_stem}. "
        "Goes where argv has the item {output_arg}, else at the end.")
    output_ext: str = setting(".png", keys.OUTPUT_EXT, "The image extension when Envy chooses the output path.")
    output_format: str = setting(
        "PNG", keys.FORMAT_WORD, "What {output_format} in output_arg stands for when the scene's own format is "
        "not known (a .blend's is: its own format is kept, with output_ext replaced by its extension).")
    frame_range: bool = setting(
        False, keys.FLAG, "True when one scene file holds every frame (Blender, animated POV-Ray, V-Ray, USD).")
    range_argv: tuple[str, ...] = setting(
        (), keys.ARGV, "The arguments for frames {start} to {end} of one scene file (required with frame_range); "
        "must use {scene} and {start}/{end} or {count}.")
    threads_arg: tuple[str, ...] = setting(
        (), keys.ARGV,
        "Added when a thread count is set; must use {threads}. Goes where argv has {threads_arg}, else at the end.")
    output_next_to_scene: bool = setting(
        False, keys.FLAG, "Without a job output folder: true puts <scene stem><output_ext> next to the scene "
        "(POV-Ray's own habit); false leaves the output path the scene file holds.")
    description: str = setting("", keys.DESCRIPTION, "One line for people.")
    source: str = field(default="<code>", compare=False)  # the YAML file, for error messages

    def find_executable(
        self, overrides: Mapping[str, Any] | None = None, os_name: str | None = None
    ) -> str | None:
        """The renderer's executable on this machine, or None.

        ``overrides`` maps profile names to a path or command name (the
        ``renderers: {vray: {executable: ...}}`` config; a ``{"executable": ...}``
        mapping is accepted as the value too). An override wins over the
        profile's candidates; if it does not exist the renderer is missing,
        rather than silently running another install.
        """
        override = (overrides or {}).get(self.name)
        if isinstance(override, Mapping):
            override = override.get("executable")
        if override:
            found = _resolve(str(override))
            if found is None:
                log.warning("renderer %s: configured executable %s was not found", self.name, override)
            return found
        for candidate in self.executables.get(os_name or current_os(), ()):
            found = _resolve(candidate)
            if found is not None:
                return found
        return None

    def command(
        self,
        *,
        executable: str,
        scene: str,
        output: str | None,
        threads: int | None,
        frame: int | None = None,
        start: int | None = None,
        end: int | None = None,
        output_format: str | None = None,
    ) -> list[str]:
        """The argv list that renders ``scene``; argv[0] is ``executable``.

        Give ``frame`` for one frame, or ``start`` and ``end`` for a range
        (profiles with ``frame_range``), or neither for a still. ``output``
        and ``threads`` are optional: without them ``output_arg`` and
        ``threads_arg`` are left out and the renderer uses its own default.
        """
        for label, value in (("scene", scene), ("output", output), ("executable", executable)):
            _check_value(self.name, label, value)
        if (start is None) != (end is None):
            raise ProfileError(f"renderer '{self.name}': give both start and end for a frame range")
        if start is not None and end is not None:
            if frame is not None:
                raise ProfileError(f"renderer '{self.name}': give either a frame or a start and end, not both")
            if end < start:
                raise ProfileError(f"renderer '{self.name}': frame range {start}-{end} ends before it starts")
            if not self.range_argv:
                raise ProfileError(
                    f"renderer '{self.name}' renders one frame per scene file and cannot render a frame range"
                )
            template, where = self.range_argv, "range_argv"
        else:
            template, where = self.argv, "argv"

        values: dict[str, Any] = {
            "scene": scene, "output": output, "output_dir": None, "output_stem": None,
            "output_format": output_format or self.output_format,
            "frame": frame, "start": start, "end": end,
            "count": None if start is None or end is None else end - start + 1,
            "threads": threads if threads else None,
        }
        if output is not None:
            values["output_dir"], values["output_stem"] = _split_output(output)

        spliced = {
            OUTPUT_MARK: self._fill(self.output_arg, values, "output_arg") if output is not None else [],
            THREADS_MARK: self._fill(self.threads_arg, values, "threads_arg") if values["threads"] else [],
        }
        argv = [executable]
        for item in template:
            if item in _MARKS:
                argv.extend(spliced.pop(item))
            else:
                argv.extend(self._fill((item,), values, where))
        for mark in (OUTPUT_MARK, THREADS_MARK):  # no marker in the template: append
            argv.extend(spliced.get(mark, []))
        return argv

    def _fill(self, items: Iterable[str], values: Mapping[str, Any], where: str) -> list[str]:
        filled = []
        for item in items:
            for name in _fields(item):
                if values[name] is None:
                    raise ProfileError(
                        f"renderer '{self.name}' ({self.source}): '{where}' uses {{{name}}} but no {name} was given"
                    )
                if f'"{{{name}' in item and '"' in str(values[name]):
                    # The renderer quotes this value itself (POV-Ray's +I"..."): a '"' inside would end it.
                    raise ProfileError(f"renderer '{self.name}' cannot take a {name} path containing '\"'")
            filled.append(item.format_map(values))
        return filled

    def matches(self, filename: str) -> bool:
        """Whether ``filename`` ends with one of the profile's extensions (any case)."""
        return self.match_length(filename) > 0

    def match_length(self, filename: str) -> int:
        """Length of the longest extension that ``filename`` ends with, 0 if none."""
        base = re.split(r"[\\/]", filename)[-1].lower()
        return max((len(ext) for ext in self.extensions if base.endswith(ext) and len(base) > len(ext)), default=0)


PROFILE_KEYS = schema_of(RendererProfile, "Renderer profile keys", ProfileError)


def profile_for_file(filename: str, profiles: Mapping[str, RendererProfile]) -> RendererProfile | None:
    """The profile whose extension matches ``filename`` best: the longest extension wins
    (``.ass.gz`` over ``.gz``); on a tie the profile listed later (a user profile) wins."""
    best: RendererProfile | None = None
    best_length = 0
    for profile in profiles.values():
        length = profile.match_length(filename)
        if length and length >= best_length:
            best, best_length = profile, length
    return best


def builtin_profiles() -> dict[str, RendererProfile]:
    """The profiles shipped in ``envy/render/builtin_profiles/*.yaml``, by name (a fresh dict each call)."""
    return dict(_shipped_profiles())


@functools.cache
def _shipped_profiles() -> tuple[tuple[str, RendererProfile], ...]:
    # Parsed once per process: they ship with this build and never change under it, and each
    # render() start used to spend a second of CPU parsing them again (issue 14: submit to first start).
    folder = resources.files("envy.render").joinpath("builtin_profiles")
    profiles: dict[str, RendererProfile] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        where = f"builtin_profiles/{entry.name}"
        for profile in _parse_document(entry.read_text(encoding="utf-8"), where):
            if profile.name != entry.name[: -len(".yaml")]:
                raise ProfileError(f"{where}: 'name' must match the file name, got {profile.name!r}")
            profiles[profile.name] = profile
    return tuple(profiles.items())


def load_profiles(user_files: Sequence[Path] = (), trust: FileTrust | None = None) -> dict[str, RendererProfile]:
    """Built-in profiles, then each user file in order; a user profile replaces a built-in of the same name.

    ``trust`` (signed mode: envy/protocol/file_signing.SignedFiles.problem) says why a
    file may not choose what runs here; such a file is refused with that one line.
    """
    profiles = builtin_profiles()
    for path in user_files:
        path = Path(path)
        try:
            # A profile may sit on the share (config.yaml names it): bounded and regular (Must-hold 5).
            raw = read_config_file(path, "profile")
            problem = trust(path, raw) if trust is not None else None
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProfileError(f"{path}: a renderer profile must be UTF-8 text") from None
        except ShareFileError as exc:
            raise ProfileError(f"{path}: cannot read renderer profile ({exc})") from None
        except OSError as exc:
            raise ProfileError(f"{path}: cannot read renderer profile ({exc.strerror or exc})") from None
        if problem is not None:
            log.error("%s", problem)  # refused: the other profiles still load
            continue
        for profile in _parse_document(text, str(path)):
            if profile.name in profiles:
                log.info("renderer profile %s from %s replaces %s", profile.name, path, profiles[profile.name].source)
                del profiles[profile.name]  # re-insert so the user's profile ranks last on extension ties
            profiles[profile.name] = profile
    return profiles


def parse_profile(data: Any, where: str) -> RendererProfile:
    """Validate one profile mapping (as read from YAML); ``where`` names its file in errors."""
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a renderer profile must be a mapping of keys, not {type(data).__name__}")
    profile = RendererProfile(**PROFILE_KEYS.parse(data, where, fill_defaults=False), source=where)
    _check_templates(profile, where)
    return profile


def _parse_document(text: str, where: str) -> list[RendererProfile]:
    data = parse_yaml(text, where, ProfileError)  # no aliases, bounded nesting, before the recursive loader
    if isinstance(data, list):  # a user file may hold several profiles
        return [parse_profile(item, f"{where}[{i}]") for i, item in enumerate(data)]
    return [parse_profile(data, where)]


def _fields(item: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(item) if name is not None]


def _check_templates(profile: RendererProfile, where: str) -> None:
    """Reject unknown placeholders and impossible templates now, not at render time."""
    templates = {"argv": profile.argv, "range_argv": profile.range_argv,
                 "output_arg": profile.output_arg, "threads_arg": profile.threads_arg}
    used: dict[str, set[str]] = {}
    for key, items in templates.items():
        used[key] = set()
        for i, item in enumerate(items):
            if item in _MARKS and key in ("argv", "range_argv"):
                continue
            try:
                names = _fields(item)
            except ValueError as exc:  # e.g. a lone "{"
                raise ProfileError(f"{where}: '{key}[{i}]' is not a valid template ({exc})") from None
            for name in names:
                if name not in PLACEHOLDERS:
                    known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                    raise ProfileError(f"{where}: '{key}[{i}]' uses unknown placeholder {{{name}}} (known: {known})")
            try:
                item.format_map(_SAMPLE)
            except (ValueError, TypeError) as exc:  # a bad format spec such as {frame:x4}
                raise ProfileError(f"{where}: '{key}[{i}]' is not a valid template ({exc})") from None
            used[key].update(names)
    if not profile.argv or "scene" not in used["argv"]:
        raise ProfileError(f"{where}: 'argv' must use {{scene}}")
    if profile.frame_range and not profile.range_argv:
        raise ProfileError(f"{where}: 'range_argv' is required when 'frame_range' is true")
    if profile.range_argv:
        if not profile.frame_range:
            raise ProfileError(f"{where}: 'range_argv' is only used when 'frame_range' is true")
        if "scene" not in used["range_argv"] or not used["range_argv"] & {"start", "end", "count"}:
            raise ProfileError(f"{where}: 'range_argv' must use {{scene}} and {{start}}/{{end}} or {{count}}")
    if profile.output_arg and not used["output_arg"] & _OUTPUT_PLACEHOLDERS:
        raise ProfileError(f"{where}: 'output_arg' must use {{output}}, {{output_dir}} or {{output_stem}}")
    if profile.threads_arg and "threads" not in used["threads_arg"]:
        raise ProfileError(f"{where}: 'threads_arg' must use {{threads}}")
    for key in ("argv", "range_argv"):
        for mark in _MARKS:
            if list(templates[key]).count(mark) > 1:
                raise ProfileError(f"{where}: '{key}' has {mark} more than once")


def _check_value(profile: str, label: str, value: str | None) -> None:
    if value is None:
        return
    if "\x00" in value:
        raise ProfileError(f"renderer '{profile}': the {label} path contains a NUL character")
    if label != "executable" and value.startswith("-"):
        # A whole-item value starting with "-" would be read as an option by the renderer.
        raise ProfileError(f"renderer '{profile}': the {label} path {value!r} starts with '-'; use ./{value}")


def _split_output(output: str) -> tuple[str, str]:
    """(folder, file name without its last extension), splitting on / and \\ alike."""
    cut = max(output.rfind("/"), output.rfind("\\"))
    folder, name = (output[:cut] or output[: cut + 1], output[cut + 1 :]) if cut >= 0 else (".", output)
    dot = name.rfind(".")
    return folder, name[:dot] if dot > 0 else name


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _resolve(candidate: str) -> str | None:
    """An existing executable for one candidate: a path, a glob (newest version first) or a command name."""
    expanded = os.path.expandvars(os.path.expanduser(candidate))
    if glob.has_magic(expanded):
        for match in sorted(glob.glob(expanded), key=_natural_key, reverse=True):
            if _is_executable(match):
                return match
        return None
    if "/" not in expanded and "\\" not in expanded:
        return shutil.which(expanded)
    return expanded if _is_executable(expanded) else None


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and (sys.platform.startswith("win") or os.access(path, os.X_OK))


def resolve_executable(candidate: str) -> str | None:
    """An existing executable for a configured path, glob or command name (None: not on this machine)."""
    return _resolve(candidate)
