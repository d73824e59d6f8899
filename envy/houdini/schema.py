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
the key (docs/usd-and-houdini.md lists the keys). Parameter values are data:
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Mapping, Union

from envy.render.jobs import JobError
from envy.share.atomic import atomic_write_json

Scalar = Union[str, int, float, bool]
ParmValue = Union[Scalar, List[Scalar]]

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


@dataclass(frozen=True)
class CacheJob:
    hip: str
    node: str
    button: str = "execute"
    parms: Mapping[str, Any] = field(default_factory=dict)
    output_parm: str | None = None
    name: str | None = None
    priority: int = 50
    max_retries: int | None = None
    remap: tuple[str, ...] = ()
    wedges: int = 1
    comment: str = ""

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["parms"] = dict(self.parms)
        data["remap"] = list(self.remap)
        return data

    @property
    def display_name(self) -> str:
        return self.name or f"{_hip_stem(self.hip)} {self.node.rsplit('/', 1)[-1]}"

    def uses_version(self) -> bool:
        return any(NVV_RE.search(v) for v in _texts(self.parms))


# --- reading and writing ------------------------------------------------------------------


def cache_job_from_json(data: Any, where: str = "cache job") -> CacheJob:
    """Validate a job as read from JSON; ``CacheJobError`` (one line) names ``where`` and the key."""
    if not isinstance(data, dict):
        raise CacheJobError(f"{where}: a cache job must be a JSON object like {{\"hip\": ..., \"node\": ...}}")
    unknown = sorted(set(map(str, data)) - set(_KEYS))
    if unknown:
        raise CacheJobError(f"{where}: unknown key '{unknown[0]}' (known keys: {', '.join(_KEYS)})")
    for key in ("hip", "node"):
        if key not in data:
            raise CacheJobError(f"{where}: missing key '{key}' (the HIP file and the node whose button to press)")
    values = {key: _KEYS[key](key, value, where) for key, value in data.items()}
    return CacheJob(**values)


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
    return cache_job_from_json(data, str(path))


def save_cache_job(job: CacheJob, path: str | Path) -> None:
    """Write ``job`` as a job file (atomically), e.g. a duplicate to edit or submit later."""
    cache_job_from_json(job.to_json(), str(path))  # never write a job that would not load
    atomic_write_json(Path(path), {k: v for k, v in job.to_json().items() if v not in (None, "", ())})


def duplicate_job(job: CacheJob, parms: Mapping[str, Any] | None = None, *, replace_parms: bool = False,
                  **changes: Any) -> CacheJob:
    """A copy of ``job`` with changes, validated like a job file.

    ``parms`` are merged into the job's parameters (a value of None removes
    one) unless ``replace_parms`` is true; other keywords replace keys, e.g.
    ``duplicate_job(job, {"seed": 7}, name="smoke v2", wedges=4)``.
    """
    data = job.to_json()
    unknown = sorted(set(changes) - set(_KEYS) - {"parms"})
    if unknown:
        raise CacheJobError(f"duplicate: unknown key '{unknown[0]}' (known keys: {', '.join(_KEYS)})")
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


# --- validators: each returns the clean value or raises a one-line CacheJobError ----------------


def _hip(key: str, value: Any, where: str) -> str:
    text = _text(key, value, where)
    if not text.lower().endswith(HIP_EXTENSIONS):
        raise CacheJobError(f"{where}: '{key}' must be a HIP file ({', '.join(HIP_EXTENSIONS)}), got {value!r}")
    return text


def _node(key: str, value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NODE_RE.match(value) or "/../" in value + "/" or "/./" in value + "/":
        raise CacheJobError(
            f"{where}: '{key}' must be an absolute Houdini node path like /obj/sim/filecache1, got {value!r}"
        )
    return value


def _parm_name(key: str, value: Any, where: str) -> str:
    if not isinstance(value, str) or not _PARM_RE.match(value):
        raise CacheJobError(f"{where}: '{key}' must be a parameter name like 'execute', got {value!r}")
    return value


def _optional_parm_name(key: str, value: Any, where: str) -> str | None:
    return None if value is None else _parm_name(key, value, where)


def _text(key: str, value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\x00" in value or len(value) > MAX_TEXT:
        raise CacheJobError(f"{where}: '{key}' must be non-empty text, got {value!r}")
    return value


def _optional_text(key: str, value: Any, where: str) -> str | None:
    return None if value is None else _text(key, value, where)


def _comment(key: str, value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise CacheJobError(f"{where}: '{key}' must be text")
    return value


def _int_range(low: int, high: int) -> Callable[[str, Any, str], int]:
    def check(key: str, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CacheJobError(f"{where}: '{key}' must be a whole number from {low} to {high}, got {value!r}")
        return value
    return check


def _optional_retries(key: str, value: Any, where: str) -> int | None:
    return None if value is None else _int_range(0, 100)(key, value, where)


def _remap(key: str, value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.count(",") == 1 for v in value):
        raise CacheJobError(f"{where}: '{key}' must be a list of FROM,TO rules, e.g. [\"Z:/,/mnt/proj/\"]")
    return tuple(value)


def _scalar(key: str, value: Any, where: str) -> Scalar:
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CacheJobError(f"{where}: '{key}' must be a finite number, got {value!r}")
        return value
    if isinstance(value, str):
        if "\x00" in value or len(value) > MAX_TEXT:
            raise CacheJobError(f"{where}: '{key}' text must not hold NUL characters or be longer than {MAX_TEXT}")
        return value
    raise CacheJobError(
        f"{where}: '{key}' must be text, a number, true/false or a list of them, got {type(value).__name__} {value!r}"
    )


def _parms(key: str, value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CacheJobError(f"{where}: '{key}' must map parameter names to values, e.g. {{\"seed\": \"$NVJ\"}}")
    out: dict[str, Any] = {}
    for name, item in value.items():
        label = f"{key}.{name}"
        if not isinstance(name, str) or not (_PARM_RE.match(name) or _PARM_PATH_RE.match(name)):
            raise CacheJobError(
                f"{where}: '{label}' is not a parameter name ('seed') or a parameter path ('/obj/sim/pyro/seed')"
            )
        if isinstance(item, list):
            if not item or len(item) > MAX_TUPLE:
                raise CacheJobError(f"{where}: '{label}' must list 1 to {MAX_TUPLE} values for a parameter tuple")
            out[name] = [_scalar(label, v, where) for v in item]
        else:
            out[name] = _scalar(label, item, where)
    return out


_KEYS: dict[str, Callable[[str, Any, str], Any]] = {
    "hip": _hip,
    "node": _node,
    "button": _parm_name,
    "parms": _parms,
    "output_parm": _optional_parm_name,
    "name": _optional_text,
    "priority": _int_range(0, 100),
    "max_retries": _optional_retries,
    "remap": _remap,
    "wedges": _int_range(1, MAX_WEDGES),
    "comment": _comment,
}


def _hip_stem(hip: str) -> str:
    name = re.split(r"[\\/]", hip)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name
