"""Checking USD files before they are submitted: the ``/rendersettings`` prim and a frame.

husk renders a stage with the render settings prim it is given; Envy passes
``--settings /rendersettings``, so every top-level file must define a
``RenderSettings`` prim named ``rendersettings`` at the root. Each file must
also say which frame it is (a USD ROP writes one file per time sample):

1. ``startTimeCode`` equal to ``endTimeCode`` in the file's own metadata;
2. otherwise the number at the end of the file name (``shot.0012.usd``);
3. otherwise all of the file's time samples at one time.

With usd-core installed (``pip install 'envy[usd]'``) the stage is opened
with ``pxr.Usd`` (sublayers and references included, payloads not loaded).
Without it a ``.usda`` file is read as text, on its own; a binary crate file
(``.usdc``, or a ``.usd`` holding crate data) or a ``.usdz`` gets a one-line
message naming the extra.

Every file is checked before anything is submitted; problems are collected
and reported together, by file name.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from envy.render.jobs import JobError
from envy.share.fs import ShareFS
from envy.share.names import is_junk

USD_EXTENSIONS = (".usd", ".usda", ".usdc", ".usdz")
SETTINGS_PRIM = "/rendersettings"
USD_EXTRA_HINT = "install usd-core to read it: pip install 'envy[usd]'"

_CRATE_MAGIC = b"PXR-USDC"
_ZIP_MAGIC = b"PK\x03\x04"
_NAME_NUMBER = re.compile(r"(-?\d+)$")


class UsdFileProblem(ValueError):
    """One file cannot be rendered; the message is the reason (without the file name)."""


class UsdCheckError(JobError):
    """Some files of a folder cannot be rendered: each is named with its reason, on one line."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        listed = "; ".join(f"{name}: {reason}" for name, reason in self.problems)
        count = len(self.problems)
        super().__init__(f"{count} USD file{'s' if count != 1 else ''} cannot be rendered, nothing submitted: {listed}")


@dataclass(frozen=True)
class UsdFrame:
    path: Path
    frame: int
    frame_from: str  # "time code", "file name" or "time sample"


@dataclass
class _StageFacts:
    """What a reader found in one file."""

    settings_type: str | None = None  # type name of a defined /rendersettings, "" when untyped
    settings_elsewhere: str | None = None  # e.g. /Render/rendersettings (the Solaris default)
    start: float | None = None
    end: float | None = None
    samples: tuple[float, ...] = ()
    has_arcs: bool = False  # sublayers/references the text reader cannot follow


def usd_core_available() -> bool:
    try:
        from pxr import Usd  # noqa: F401
    except ImportError:
        return False
    return True


def is_usd_name(name: str) -> bool:
    return name.lower().endswith(USD_EXTENSIONS) and not name.startswith(".") and ".envy~" not in name


def check_usd_file(path: Path, use_usd_core: bool | None = None) -> UsdFrame:
    """The frame of one top-level USD file; ``UsdFileProblem`` says why it cannot be rendered."""
    if use_usd_core is None:
        use_usd_core = usd_core_available()
    facts = _read_with_usd_core(path) if use_usd_core else _read_as_text(path)
    _require_settings(facts, use_usd_core)
    frame, how = _frame_of(path.name, facts)
    return UsdFrame(path, frame, how)


def usd_files(folder: Path, pattern: str | None = None, *, fs: ShareFS) -> list[Path]:
    """The USD files directly in ``folder`` (optionally only names matching a glob ``pattern``)."""
    names = sorted(n for n in fs.listdir(folder) if not is_junk(n) and is_usd_name(n))
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n.lower(), pattern.lower())]
    return [folder / n for n in names]


def check_usd_folder(
    folder: Path, pattern: str | None = None, use_usd_core: bool | None = None, *, fs: ShareFS
) -> list[UsdFrame]:
    """Every USD file of ``folder`` with its frame, sorted by frame; ``UsdCheckError`` names each bad file."""
    paths = usd_files(folder, pattern, fs=fs)
    if not paths:
        which = f"matching {pattern!r} " if pattern else ""
        raise JobError(f"{folder}: no USD files {which}({', '.join(USD_EXTENSIONS)})")
    return check_usd_paths(paths, use_usd_core)


def check_usd_paths(paths: Iterable[Path], use_usd_core: bool | None = None) -> list[UsdFrame]:
    if use_usd_core is None:
        use_usd_core = usd_core_available()
    problems: list[tuple[str, str]] = []
    frames: list[UsdFrame] = []
    by_frame: dict[int, UsdFrame] = {}
    for path in paths:
        try:
            found = check_usd_file(path, use_usd_core)
        except UsdFileProblem as exc:
            problems.append((path.name, str(exc)))
            continue
        if found.frame in by_frame:
            problems.append((path.name, f"frame {found.frame} is also {by_frame[found.frame].path.name}"))
            continue
        by_frame[found.frame] = found
        frames.append(found)
    if problems:
        raise UsdCheckError(problems)
    return sorted(frames, key=lambda f: f.frame)


# --- the frame -------------------------------------------------------------------------


def _frame_of(name: str, facts: _StageFacts) -> tuple[int, str]:
    if facts.start is not None and facts.end is not None and facts.start == facts.end:
        return _whole(facts.start, "its time code"), "time code"
    stem = name[: name.rfind(".")] if "." in name else name
    m = _NAME_NUMBER.search(stem)
    if m:
        return int(m.group(1)), "file name"
    distinct = sorted(set(facts.samples))
    if len(distinct) == 1:
        return _whole(distinct[0], "its time sample"), "time sample"
    if distinct:
        raise UsdFileProblem(
            f"no frame: time samples from {distinct[0]:g} to {distinct[-1]:g} "
            "and no frame number at the end of the file name"
        )
    raise UsdFileProblem(
        "no frame: no time sample and no frame number at the end of the file name (e.g. shot.0001.usd)"
    )


def _whole(value: float, what: str) -> int:
    if not math.isfinite(value) or value != int(value):
        raise UsdFileProblem(f"{what} {value:g} is not a whole frame")
    return int(value)


def _require_settings(facts: _StageFacts, used_usd_core: bool) -> None:
    if facts.settings_type == "RenderSettings":
        return
    if facts.settings_type is not None:
        kind = f"a {facts.settings_type} prim" if facts.settings_type else "an untyped prim"
        raise UsdFileProblem(f"{SETTINGS_PRIM} is {kind}, not RenderSettings")
    reason = f"no {SETTINGS_PRIM} prim (husk needs the RenderSettings prim at the root, named rendersettings)"
    if facts.settings_elsewhere:
        reason += f"; found {facts.settings_elsewhere}"
    if facts.has_arcs and not used_usd_core:
        reason += f"; it may come from a sublayer or reference, which are only read with usd-core ({USD_EXTRA_HINT})"
    raise UsdFileProblem(reason)


# --- reading with usd-core ------------------------------------------------------------------


def _read_with_usd_core(path: Path) -> _StageFacts:
    from pxr import Sdf, Tf, Usd

    try:
        stage = Usd.Stage.Open(str(path), Usd.Stage.LoadNone)
    except Tf.ErrorException as exc:
        raise UsdFileProblem(f"not a readable USD file ({_first_line(str(exc))})") from None
    if stage is None:
        raise UsdFileProblem("not a readable USD file")
    facts = _StageFacts()
    prim = stage.GetPrimAtPath(SETTINGS_PRIM)
    if prim and prim.IsDefined() and not prim.IsAbstract():
        facts.settings_type = str(prim.GetTypeName())
    else:
        other = stage.GetPrimAtPath("/Render/rendersettings")
        if other and other.IsDefined():
            facts.settings_elsewhere = "/Render/rendersettings"
    layer: Sdf.Layer = stage.GetRootLayer()
    if layer.HasStartTimeCode() and layer.HasEndTimeCode():
        facts.start, facts.end = float(layer.startTimeCode), float(layer.endTimeCode)
    facts.samples = tuple(float(t) for t in layer.ListAllTimeSamples())
    return facts


def _first_line(text: str) -> str:
    """The message of a Tf error, without "Error in 'pxrInternal...' at line N in file F : '...'"."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if "rror" in line or "ailed" in line), lines[0] if lines else "unknown error")
    cut = detail.find(" : '")
    if cut >= 0:
        detail = detail[cut + 4 :].rstrip("'")
    return " ".join(detail.split())[:200]


# --- reading .usda as text ---------------------------------------------------------------


def _read_as_text(path: Path) -> _StageFacts:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UsdFileProblem(f"cannot read ({exc.strerror or exc})") from None
    if data.startswith(_CRATE_MAGIC):
        raise UsdFileProblem(f"a binary USD (crate) file; {USD_EXTRA_HINT}")
    if data.startswith(_ZIP_MAGIC):
        raise UsdFileProblem(f"a USDZ package; {USD_EXTRA_HINT}")
    if not data.startswith(b"#usda"):
        raise UsdFileProblem("not a USD file (no #usda header and not a crate file)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsdFileProblem("not a USD file (text is not UTF-8)") from None
    try:
        return _UsdaScan(text).run()
    except _ScanError as exc:
        raise UsdFileProblem(f"not a valid .usda file ({exc})") from None


class _ScanError(ValueError):
    pass


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
  | (?P<asset>@@@.*?@@@|@[^@\n]*@)
  | (?P<path><[^>\n]*>)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_:.\-]*)
  | (?P<punct>[{}()\[\]=:,;&])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_SPECIFIERS = {"def", "over", "class"}
_ARCS = {"subLayers", "references", "payload", "inherits", "specializes"}


class _UsdaScan:
    """A tolerant scan of a .usda file: root prims, layer time codes, time samples, composition arcs.

    It is not a parser: it tracks brackets and recognises the few statements
    it needs, so it never runs or trusts anything in the file.
    """

    def __init__(self, text: str) -> None:
        self.tokens = self._lex(text.split("\n", 1)[1] if "\n" in text else "")
        self.facts = _StageFacts()

    @staticmethod
    def _lex(text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            assert m is not None  # (?P<other>.) matches anything
            kind = m.lastgroup or ""
            if kind not in ("space", "comment"):
                tokens.append((kind, m.group()))
            pos = m.end()
        return tokens

    def run(self) -> _StageFacts:
        toks = self.tokens
        i = 0
        if toks and toks[0] == ("punct", "("):
            i = self._layer_metadata(1)
        stack: list[str | None] = []  # one entry per open "{": a prim name, or None for other braces
        parens = 0
        pending: str | None = None
        while i < len(toks):
            kind, text = toks[i]
            if kind == "word" and text in _SPECIFIERS and parens == 0:
                j = i + 1
                type_name = ""
                if j < len(toks) and toks[j][0] == "word":
                    type_name, j = toks[j][1], j + 1
                if j < len(toks) and toks[j][0] == "string":
                    pending = _unquote(toks[j][1])
                    self._prim(stack, text, type_name, pending)
                    i = j + 1
                    continue
            elif kind == "word" and text.endswith(".timeSamples"):
                i = self._time_samples(i + 1)
                continue
            elif kind == "word" and text in _ARCS:
                self.facts.has_arcs = True
            elif text in ("(", "["):
                parens += 1
            elif text in (")", "]"):
                parens -= 1
            elif text == "{":
                stack.append(pending if parens == 0 else None)
                pending = None
            elif text == "}":
                if not stack:
                    raise _ScanError("unbalanced '}'")
                stack.pop()
            i += 1
        if stack or parens:
            raise _ScanError("unbalanced brackets")
        return self.facts

    def _prim(self, stack: list[str | None], specifier: str, type_name: str, name: str) -> None:
        parents = [s for s in stack if s is not None]
        path = "/" + "/".join([*parents, name])
        if path == SETTINGS_PRIM and specifier == "def":
            self.facts.settings_type = type_name
        elif path == "/Render/rendersettings" and specifier == "def":
            self.facts.settings_elsewhere = path

    def _layer_metadata(self, i: int) -> int:
        """Read ``( startTimeCode = 1  endTimeCode = 1 subLayers = [...] )``; return the index after ``)``."""
        toks = self.tokens
        depth = 1
        while i < len(toks) and depth:
            kind, text = toks[i]
            if text in ("(", "[", "{"):
                depth += 1
            elif text in (")", "]", "}"):
                depth -= 1
            elif depth == 1 and kind == "word" and text in ("startTimeCode", "endTimeCode") and i + 2 < len(toks):
                if toks[i + 1][1] == "=" and toks[i + 2][0] == "number":
                    setattr(self.facts, "start" if text == "startTimeCode" else "end", float(toks[i + 2][1]))
            elif kind == "word" and text in _ARCS:
                self.facts.has_arcs = True
            i += 1
        if depth:
            raise _ScanError("unbalanced layer metadata")
        return i

    def _time_samples(self, i: int) -> int:
        """Read ``= { 1: ..., 2: ... }``; return the index after it."""
        toks = self.tokens
        if i + 1 >= len(toks) or toks[i][1] != "=" or toks[i + 1][1] != "{":
            return i
        i += 2
        depth = 1
        samples = list(self.facts.samples)
        while i < len(toks) and depth:
            kind, text = toks[i]
            if text in ("(", "[", "{"):
                depth += 1
            elif text in (")", "]", "}"):
                depth -= 1
            elif depth == 1 and kind == "number" and i + 1 < len(toks) and toks[i + 1][1] == ":":
                samples.append(float(text))
            i += 1
        if depth:
            raise _ScanError("unbalanced timeSamples")
        self.facts.samples = tuple(samples)
        return i


def _unquote(token: str) -> str:
    quote = 3 if token[:3] in ('"""', "'''") else 1
    return token[quote:-quote]
