"""The lockdown policy file: who may not use the farm, and how many machines a user may use when.

An admin keeps one YAML file in a central place (users can read it, not edit
it)::

    # Envy lockdown policy
    blacklist: [mallory]
    limits:                       # everyone, by the lab's local time
      - {hours: "00:00-22:00", machines: 5}
      - {hours: "22:00-24:00", machines: unlimited}
    users:                        # per-user overrides (replace 'limits' for that user)
      alice:
        machines: 10              # all day
      bob:
        limits:
          - {hours: "08:00-18:00", machines: 2}
    check_every: 20               # seconds between an agent's checks

Hours not covered by any window have no limit. A window may wrap past
midnight (``"22:00-07:00"``); windows of one list must not overlap.
``machines: 0`` means none: the user's agents stand down in that window.
User names compare case-insensitively (Windows user names do).

Every error is one line naming the file and the key, e.g.
``policy.yaml: 'limits[1].hours' must be "HH:MM-HH:MM" ...``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import yaml

from envy.share.fs import REAL_FS, ShareFS

DEFAULT_CHECK_EVERY_S = 20.0
MINUTES_PER_DAY = 24 * 60
# A policy file is a few lines; anything much bigger is a mistake, not a policy.
MAX_POLICY_BYTES = 256 * 1024

_HOURS_RE = re.compile(r"^\s*(\d{1,2}):(\d\d)\s*-\s*(\d{1,2}):(\d\d)\s*$")
_TOP_KEYS = ("blacklist", "limits", "users", "check_every")
_USER_KEYS = ("machines", "limits")
_WINDOW_KEYS = ("hours", "machines")


class PolicyError(ValueError):
    """The policy file is unreadable or invalid: one line naming the file and the key."""


@dataclass(frozen=True)
class Window:
    """A stretch of the day, in minutes since local midnight; ``end`` may be <= ``start`` (wraps)."""

    start: int
    end: int
    machines: int | None  # None: no limit

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # wraps past midnight

    @property
    def hours(self) -> str:
        return f"{clock_text(self.start)}-{clock_text(self.end)}"


@dataclass(frozen=True)
class Limit:
    """What applies to one user at one moment, and why."""

    machines: int | None  # None: no limit
    why: str  # e.g. "default limits, 00:00-22:00"
    until: int | None = None  # minute of the day this stops applying; None: all day
    then: int | None = None  # the number that applies after ``until`` (None: no limit)

    def describe(self) -> str:
        """E.g. "at most 5 machines until 22:00 (default limits, 00:00-22:00)", to follow "<user> may use"."""
        if self.machines is None:
            amount = "any number of machines"
        elif self.machines == 0:
            amount = "no machines"
        else:
            amount = f"at most {plural(self.machines, 'machine')}"
        until = f" until {clock_text(self.until)}" if self.until is not None else ""
        return f"{amount}{until} ({self.why})"


@dataclass(frozen=True)
class Policy:
    path: str
    blacklist: frozenset[str] = frozenset()  # case-folded user names
    limits: tuple[Window, ...] = ()
    users: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)  # case-folded name -> windows
    check_every: float = DEFAULT_CHECK_EVERY_S

    def is_blacklisted(self, user: str) -> bool:
        return user.casefold() in self.blacklist

    def windows_for(self, user: str) -> tuple[tuple[Window, ...], str]:
        key = user.casefold()
        if key in self.users:
            return self.users[key], f"override for {user}"
        return self.limits, "default limits"

    def limit_for(self, user: str, now: datetime) -> Limit:
        """The limit at ``now`` (the lab's local wall-clock time), and until when it holds."""
        windows, source = self.windows_for(user)
        minute = now.hour * 60 + now.minute
        current = _machines_at(windows, minute)
        window = _window_at(windows, minute)
        why = f"{source}, {window.hours}" if window else f"{source}: no window covers {clock_text(minute)}"
        for step in range(1, MINUTES_PER_DAY):
            later = (minute + step) % MINUTES_PER_DAY
            then = _machines_at(windows, later)
            if then != current:
                return Limit(current, why, later, then)
        return Limit(current, why)


def _window_at(windows: tuple[Window, ...], minute: int) -> Window | None:
    return next((w for w in windows if w.contains(minute)), None)


def _machines_at(windows: tuple[Window, ...], minute: int) -> int | None:
    window = _window_at(windows, minute)
    return window.machines if window else None


def clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


# -- reading and validating ----------------------------------------------------------------
def load_policy(path: Path, fs: ShareFS = REAL_FS) -> Policy:
    """Read and validate the policy file; PolicyError (one line) when it cannot be used."""
    try:
        data = fs.read_bytes(path)
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file ({exc.strerror or exc})") from None
    return parse_policy(data, str(path))


def parse_policy(data: bytes, where: str) -> Policy:
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"{where}: larger than {MAX_POLICY_BYTES // 1024} KB; a policy is a few lines")
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise PolicyError(f"{where}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise PolicyError(f"{where}:{line} is not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise PolicyError(f"{where}: must hold 'key: value' settings ({', '.join(_TOP_KEYS)}), not a {type(doc).__name__}")
    _no_unknown_keys(doc, _TOP_KEYS, where, "")
    users: dict[str, tuple[Window, ...]] = {}
    raw_users = doc.get("users") or {}
    if not isinstance(raw_users, dict):
        raise PolicyError(f"{where}: 'users' must map user names to 'machines: N' or 'limits: [...]'")
    for name, settings in raw_users.items():
        key = f"users.{name}"
        if not isinstance(settings, dict):
            raise PolicyError(f"{where}: '{key}' must be 'machines: N' or 'limits: [...]', got {settings!r}")
        _no_unknown_keys(settings, _USER_KEYS, where, f"{key}.")
        if ("machines" in settings) == ("limits" in settings):
            raise PolicyError(f"{where}: '{key}' needs exactly one of 'machines' (all day) or 'limits' (by hours)")
        if "machines" in settings:
            windows: tuple[Window, ...] = (Window(0, MINUTES_PER_DAY, _machines(settings["machines"], f"{key}.machines", where)),)
        else:
            windows = _windows(settings["limits"], f"{key}.limits", where)
        users[str(name).casefold()] = windows
    return Policy(
        path=where,
        blacklist=frozenset(n.casefold() for n in _names(doc.get("blacklist"), "blacklist", where)),
        limits=_windows(doc.get("limits"), "limits", where),
        users=users,
        check_every=_check_every(doc.get("check_every", DEFAULT_CHECK_EVERY_S), where),
    )


def _no_unknown_keys(mapping: Mapping[Any, Any], known: tuple[str, ...], where: str, prefix: str) -> None:
    for key in mapping:
        if key not in known:
            raise PolicyError(f"{where}: unknown key '{prefix}{key}' (known: {', '.join(known)})")


def _names(value: Any, key: str, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyError(f"{where}: '{key}' must be a list of user names, e.g. [mallory, eve]")
    return [v.strip() for v in value]


def _check_every(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise PolicyError(f"{where}: 'check_every' must be a number of seconds from 0 (not included) to 3600, got {value!r}")
    return float(value)


def _machines(value: Any, key: str, where: str) -> int | None:
    if value == "unlimited":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError(f"{where}: '{key}' must be a whole number >= 0 or 'unlimited', got {value!r}")
    return value


def _windows(value: Any, key: str, where: str) -> tuple[Window, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PolicyError(f"{where}: '{key}' must be a list like [{{hours: \"00:00-22:00\", machines: 5}}]")
    windows: list[Window] = []
    for index, item in enumerate(value):
        item_key = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise PolicyError(f"{where}: '{item_key}' must be {{hours: \"HH:MM-HH:MM\", machines: N}}, got {item!r}")
        _no_unknown_keys(item, _WINDOW_KEYS, where, f"{item_key}.")
        for needed in _WINDOW_KEYS:
            if needed not in item:
                raise PolicyError(f"{where}: '{item_key}' lacks '{needed}'")
        start, end = _hours(item["hours"], f"{item_key}.hours", where)
        window = Window(start, end, _machines(item["machines"], f"{item_key}.machines", where))
        for other in windows:
            if _overlap(window, other):
                raise PolicyError(f"{where}: '{item_key}.hours' {window.hours} overlaps {other.hours}")
        windows.append(window)
    return tuple(windows)


def _hours(value: Any, key: str, where: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 22:00 as the base-60 number 1320.
        raise PolicyError(f"{where}: '{key}' must be text \"HH:MM-HH:MM\" in quotes, got the number {value}")
    m = _HOURS_RE.match(value) if isinstance(value, str) else None
    if not m:
        raise PolicyError(f"{where}: '{key}' must be \"HH:MM-HH:MM\" (local time, e.g. \"00:00-22:00\"), got {value!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > MINUTES_PER_DAY:
        raise PolicyError(f"{where}: '{key}' has an impossible time in {value!r} (00:00 to 24:00)")
    if start == end:
        raise PolicyError(f"{where}: '{key}' is empty ({value!r}); all day is \"00:00-24:00\"")
    return start, end


def _overlap(a: Window, b: Window) -> bool:
    return any(a.contains(m) and b.contains(m) for m in range(MINUTES_PER_DAY))
