"""The cache job: which HIP file to open, which node's button to press, which parameters to set first.

A cache job is a small JSON file an artist (or an HDA) writes::

    {
      "hip": "Z:/proj/fx/smoke.hip",
      "node": "/obj/sim/filecache1",
      "button": "execute",
      "parms": {"seed": "$NVJ", "file": "Z:/proj/fx/cache/smoke/$NVV/wedge$NVJ/smoke.$F4.bgeo.sc"},
      "wedges": 10
    }

Every key is checked on submit; an error is one line naming the file and
the key. The keys are declared once, on ``CacheJob`` below
(docs/config-reference.md lists them). Parameter values are data:
text, numbers, true/false, or a list of them for a parameter tuple. They
reach Houdini through ``parm.set(value)`` in the runner, never as code.

Tokens in parameter values, replaced when the job is submitted:

* ``$NVJ`` (or ``${NVJ}``): the job number, 1..N for N wedges. A value that
  is exactly ``$NVJ`` becomes the whole number; inside text it is replaced
  as text (``wedge$NVJ`` -> ``wedge3``);
* ``$NVV`` (or ``${NVV}``): the next free version folder name (``v003``) in
  the folder written before it (``.../smoke/$NVV/...``).

Houdini's own variables (``$HIP``, ``$F4``) are left for Houdini to expand.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from envy.render.jobs import JobError
from envy.settings.kinds import (
    Checked,
    Kind,
    Optional,
    Source,
    Text,
    TextList,
    Whole,
    quoted,
)
from envy.settings.schema import REQUIRED, schema_of, setting
from envy.share.atomic import atomic_write_json
from envy.share.fs import ShareFS

Scalar = str | int | float | bool
ParmValue = Scalar | list[Scalar]

HIP_EXTENSIONS = (".hip", ".hipnc", ".hiplc")
MAX_WEDGES = 10_000
MAX_TUPLE = 16
MAX_TEXT = 64 * 1024

NVJ_RE = re.compile(r"\$(?:NVJ(?![A-Za-z0-9_])|\{NVJ\})")
NVV_RE = re.compile(r"\$(?:NVV(?![A-Za-z0-9_])|\{NVV\})")
_WHOLE_NVJ = ("$NVJ", "${NVJ}")
_NODE_RE = re.compile(r"^(/[A-Za-z0-9_.\-]+)+$")
_PARM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARM_PATH_RE = re.compile(r"^(/[A-Za-z0-9_.\-]+)+/[A-Za-z_][A-Za-z0-9_]*$")


class CacheJobError(JobError):
    """A bad cache job: one line naming the file and the key."""


# --- kinds of values: each check returns the clean value or fails with a one-line CacheJobError ----


def _hip(value: str, key: str, source: Source) -> str:
    if not value.lower().endswith(HIP_EXTENSIONS):
        source.fail(key, f"must be a HIP file ({', '.join(HIP_EXTENSIONS)}), got {quoted(value)}")
    return value


def _node(value: str, key: str, source: Source) -> str:
    if "/../" in value + "/" or "/./" in value + "/":
        source.fail(key, f"must be an absolute Houdini node path like /obj/sim/filecache1, got {quoted(value)}")
    return value


def _remap(value: tuple[str, ...], key: str, source: Source) -> tuple[str, ...]:
    if not all(v.count(",") == 1 for v in value):
        source.fail(key, "must be a list of FROM,TO rules, e.g. [\"Z:/,/mnt/proj/\"]")
    return value


class ParmValues(Kind):
    """Parameter names (or paths) to values: text, numbers, true/false, or a list of them (a tuple)."""

    wanted = 'a mapping of parameter names to values, e.g. {"seed": "$NVJ"}'

    def clean(self, value: Any, key: str, source: Source) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            source.fail(key, "must map parameter names to values, e.g. {\"seed\": \"$NVJ\"}")
        out: dict[str, Any] = {}
        for name, item in value.items():
            label = f"{key}.{name}"
            if not isinstance(name, str) or not (_PARM_RE.match(name) or _PARM_PATH_RE.match(name)):
                source.fail(label, "is not a parameter name ('seed') or a parameter path ('/obj/sim/pyro/seed')")
            if isinstance(item, list):
                if not item or len(item) > MAX_TUPLE:
                    source.fail(label, f"must list 1 to {MAX_TUPLE} values for a parameter tuple")
                out[name] = [_scalar(label, v, source) for v in item]
            else:
                out[name] = _scalar(label, item, source)
        return MappingProxyType(out)


def _scalar(key: str, value: Any, source: Source) -> Scalar:
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            source.fail(key, f"must be a finite number, got {value!r}")
        return value
    if isinstance(value, str):
        if "\x00" in value or len(value) > MAX_TEXT:
            source.fail(key, f"text must not hold NUL characters or be longer than {MAX_TEXT}")
        return value
    kind = type(value).__name__
    source.fail(key, f"must be text, a number, true/false or a list of them, got {kind} {quoted(value)}")


TEXT = Text("non-empty text", non_blank=True, max_length=MAX_TEXT)
HIP = Checked(Text("non-empty text", non_blank=True, max_length=MAX_TEXT), _hip,
              f"a HIP file ({', '.join(HIP_EXTENSIONS)})")
NODE = Checked(Text("an absolute Houdini node path like /obj/sim/filecache1", pattern=_NODE_RE), _node)
PARM_NAME = Text("a parameter name like 'execute'", pattern=_PARM_RE)
PARMS = ParmValues()




@dataclass(frozen=True)
class CacheJob:
    """One cache job file. Each key is declared once, here: default, kind and help."""

    hip: str = setting(
        REQUIRED, HIP, "The HIP file, as the submitter's machine writes it; it must exist when you submit.")
    node: str = setting(REQUIRED, NODE, "The node whose button to press, an absolute path like /obj/sim/filecache1.")
    button: str = setting("execute", PARM_NAME, "The button parameter to press (File Cache Save to Disk, ROP Render).")
    parms: Mapping[str, Any] = setting(
        MappingProxyType({}), PARMS,
        "Parameters to set before pressing: a name on the node (seed) or a full parameter path "
        "(/obj/sim/pyro/seed), mapped to text, a number, true/false (set as 1/0), or a list of those for a "
        "parameter tuple. Values may use $NVJ (the job number) and $NVV (the next version folder).")
    output_parm: str | None = setting(
        None, Optional(PARM_NAME),
        "The parameter on the node holding the file the cache writes (default: sopoutput, else file).")
    name: str | None = setting(
        None, Optional(TEXT), "The job's name in the farm view (default: the HIP file's and the node's names).")
    priority: int = setting(50, Whole(ge=0, le=100), "Higher runs first.")
    max_retries: int | None = setting(
        None, Optional(Whole(ge=0, le=100)), "Retries before a task fails (default: the farm config's).")
    remap: tuple[str, ...] = setting(
        (), Checked(TextList(), _remap, "a list of FROM,TO rules, e.g. [\"Z:/,/mnt/proj/\"]"),
        "Path remap rules for this job, added to the agents' own.")
    wedges: int = setting(
        1, Whole(ge=1, le=MAX_WEDGES), "How many jobs to make; $NVJ counts 1..N. --wedges on the command line wins.")
    comment: str = setting("", Text(max_length=MAX_TEXT), "Copied into the job's descriptive file.")

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["parms"] = {k: list(v) if isinstance(v, list) else v for k, v in self.parms.items()}
        data["remap"] = list(self.remap)
        return data

    @property
    def display_name(self) -> str:
        return self.name or f"{_hip_stem(self.hip)} {self.node.rsplit('/', 1)[-1]}"

    def uses_version(self) -> bool:
        return any(NVV_RE.search(v) for v in _texts(self.parms))


CACHE_JOB_KEYS = schema_of(CacheJob, "Cache job keys", CacheJobError)


# --- reading and writing ------------------------------------------------------------------


def cache_job_from_json(data: Any, where: str = "cache job") -> CacheJob:
    """Validate a job as read from JSON; ``CacheJobError`` (one line) names ``where`` and the key."""
    if not isinstance(data, dict):
        raise CacheJobError(f"{where}: a cache job must be a JSON object like {{\"hip\": ..., \"node\": ...}}")
    return CacheJob(**CACHE_JOB_KEYS.parse(data, where))


def load_cache_job(path: str | Path) -> CacheJob:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CacheJobError(f"{path}: job file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CacheJobError(f"{path}: cannot read the job file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CacheJobError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:  # thousands of nested [ ]
        raise CacheJobError(f"{path}: nested too deeply to be a cache job") from None
    return cache_job_from_json(data, str(path))


def save_cache_job(job: CacheJob, path: str | Path, fs: ShareFS) -> None:
    """Write ``job`` as a job file (atomically), e.g. a duplicate to edit or submit later."""
    cache_job_from_json(job.to_json(), str(path))  # never write a job that would not load
    atomic_write_json(Path(path), {k: v for k, v in job.to_json().items() if v not in (None, "", ())}, fs)


def duplicate_job(job: CacheJob, parms: Mapping[str, Any] | None = None, *, replace_parms: bool = False,
                  **changes: Any) -> CacheJob:
    """A copy of ``job`` with changes, validated like a job file.

    ``parms`` are merged into the job's parameters (a value of None removes
    one) unless ``replace_parms`` is true; other keywords replace keys, e.g.
    ``duplicate_job(job, {"seed": 7}, name="smoke v2", wedges=4)``.
    """
    data = job.to_json()
    CACHE_JOB_KEYS.check_known(changes, Source("duplicate", CacheJobError))
    data.update(changes)
    if parms is not None:
        merged = {} if replace_parms else dict(data.get("parms") or {})
        for key, value in parms.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        data["parms"] = merged
    return cache_job_from_json(data, "duplicate")


# --- tokens --------------------------------------------------------------------------------


def substitute(value: Any, job_number: int, version: str | None = None) -> Any:
    """A parameter value for job ``job_number``: ``$NVJ`` -> the number, ``$NVV`` -> the version name."""
    if isinstance(value, list):
        return [substitute(v, job_number, version) for v in value]
    if not isinstance(value, str):
        return value
    if value in _WHOLE_NVJ:
        return job_number
    text = NVJ_RE.sub(str(job_number), value)
    if version is not None:
        text = NVV_RE.sub(version, text)
    return text


def job_parms(job: CacheJob, job_number: int, version: str | None = None) -> dict[str, Any]:
    return {name: substitute(value, job_number, version) for name, value in job.parms.items()}


def _texts(parms: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for value in parms.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                out.append(item)
    return out


def version_roots(job: CacheJob) -> list[str]:
    """The folders written before ``$NVV`` in the job's parameters (as written, unexpanded)."""
    roots = []
    for text in _texts(job.parms):
        for m in NVV_RE.finditer(text):
            roots.append(text[: m.start()])
    return roots


def _hip_stem(hip: str) -> str:
    name = re.split(r"[\\/]", hip)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name
