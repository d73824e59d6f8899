"""The NIMBY settings: what to do with renders while someone uses the machine, and when to render.

Keys (farm, user or this machine's config file; later wins as for every key):

``when_in_use``       ``pause`` (default: suspend the render, resume when idle again),
                      ``stop`` (give the frame back to the farm), ``nice`` (keep going at
                      the lowest priority) or ``keep`` (ignore the person).
``idle_after``        minutes without keyboard or mouse input before the machine counts
                      as idle again (default 10; fractions allowed).
``cpu_busy_percent``  other programs using more than this share of the CPU count as in use
                      (0, the default, turns the check off).
``users_in_use``      another user signed in (console, remote desktop) counts as in use (default true).
``render_hours``      render only in these hours, local time, e.g. ``"18:00-08:00"``
                      (overnight spans midnight); empty (default) means any time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WHEN_IN_USE = ("pause", "stop", "nice", "keep")
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class NimbySettingError(ValueError):
    """A bad NIMBY setting: the message names the key, the source and what is allowed."""


@dataclass(frozen=True)
class RenderHours:
    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str, key: str = "render_hours", where: str = "settings") -> RenderHours:
        match = _HOURS.match(text)
        if match:
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60 and (h1, m1) != (h2, m2):
                return cls(dt.time(h1, m1), dt.time(h2, m2))
        raise NimbySettingError(
            f"{where}: '{key}' must be two different times HH:MM-HH:MM such as \"18:00-08:00\", got {text!r}"
        )

    def contains(self, moment: dt.time) -> bool:
        """True inside the hours; the start is inside, the end is not; a span may cross midnight."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class NimbySettings:
    when_in_use: str = "pause"
    idle_after_s: float = 600.0
    cpu_busy_percent: float = 0.0
    users_in_use: bool = True
    render_hours: RenderHours | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: str = "settings") -> NimbySettings:
        """Validate the NIMBY keys in ``values`` (others are ignored); missing keys keep their defaults."""
        s = cls()
        when = values.get("when_in_use", s.when_in_use)
        if when not in WHEN_IN_USE:
            raise NimbySettingError(f"{where}: 'when_in_use' must be one of {', '.join(WHEN_IN_USE)}, got {when!r}")
        idle = values.get("idle_after", s.idle_after_s / 60.0)
        if isinstance(idle, bool) or not isinstance(idle, (int, float)) or idle < 0:
            raise NimbySettingError(f"{where}: 'idle_after' must be minutes (a number >= 0), got {idle!r}")
        cpu = values.get("cpu_busy_percent", s.cpu_busy_percent)
        if isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or not 0 <= cpu <= 100:
            raise NimbySettingError(f"{where}: 'cpu_busy_percent' must be a number from 0 to 100, got {cpu!r}")
        users = values.get("users_in_use", s.users_in_use)
        if not isinstance(users, bool):
            raise NimbySettingError(f"{where}: 'users_in_use' must be true or false, got {users!r}")
        hours_text = values.get("render_hours") or ""
        if not isinstance(hours_text, str):
            raise NimbySettingError(f"{where}: 'render_hours' must be text such as \"18:00-08:00\", got {hours_text!r}")
        hours = RenderHours.parse(hours_text, where=where) if hours_text.strip() else None
        return cls(str(when), float(idle) * 60.0, float(cpu), users, hours)


# The config keys (envy/config.py) with their defaults, as users write them.
KEY_DEFAULTS: dict[str, Any] = {
    "when_in_use": "pause",
    "idle_after": 10.0,
    "cpu_busy_percent": 0.0,
    "users_in_use": True,
    "render_hours": "",
}


def validate_key(key: str, value: Any, where: str) -> Any:
    """Check one NIMBY key as envy/config.py does for every key; the value as the config keeps it."""
    NimbySettings.from_values({key: value}, where)  # raises NimbySettingError naming key and source
    if key in ("idle_after", "cpu_busy_percent"):
        return float(value)
    return value if key != "render_hours" else (value or "").strip()


def nimby_settings(config: Any) -> NimbySettings:
    """The NIMBY settings of a Config (keys it lacks keep their defaults)."""
    values = {key: getattr(config, key) for key in KEY_DEFAULTS if hasattr(config, key)}
    return NimbySettings.from_values(values, "settings")
