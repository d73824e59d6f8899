"""The lockdown policy file: who may not use the farm, and how many machines a user may use when.

An admin keeps one YAML file in a central place (users can read it, not edit
it)::

    # Envy lockdown policy
    timezone: Europe/Berlin       # the hours below are this zone's (an IANA name)
    blacklist: [mallory]
    limits:                       # everyone, by the policy's time zone
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

The hours are wall-clock times in the policy's ``timezone``; a policy without
one is judged in each machine's own system zone (never the agent's ``TZ``
variable, which whoever starts the agent chooses): envy/platform/time_zone.py.

Every error is one line naming the file and the key, e.g.
``policy.yaml: 'limits[1].hours' must be "HH:MM-HH:MM" ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from envy.platform.time_zone import UnknownZone, Zone, zone_named
from envy.settings.files import parse_yaml
from envy.settings.kinds import (
    Checked,
    Kind,
    ListOf,
    MapOf,
    Number,
    Record,
    Source,
    TextList,
    Whole,
)
from envy.settings.schema import Key, Rule, Schema, schema_of, setting
from envy.share.bounded import FileTrust, ShareFileError, read_share_file
from envy.share.fs import ShareFS

MINUTES_PER_DAY = 24 * 60
# A policy file is a few lines; anything much bigger is a mistake, not a policy.
MAX_POLICY_BYTES = 256 * 1024

_HOURS_RE = re.compile(r"^\s*(\d{1,2}):(\d\d)\s*-\s*(\d{1,2}):(\d\d)\s*$")


class PolicyError(ValueError):
    """The policy file is unreadable or invalid: one line naming the file and the key."""


@dataclass(frozen=True)
class Window:
    """A stretch of the day, in minutes since midnight in the policy's zone; ``end`` may be <= ``start`` (wraps)."""

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


# -- the kinds of values in a policy file (envy/settings) -----------------------------------------
class Hours(Kind):
    """ "HH:MM-HH:MM" in the policy's time zone, cleaned to (start, end) minutes since midnight."""

    wanted = '"HH:MM-HH:MM" (the policy\'s time zone, e.g. "00:00-22:00")'

    def clean(self, value: Any, key: str, source: Source) -> tuple[int, int]:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 22:00 as the base-60 number 1320.
            source.fail(key, f"must be text \"HH:MM-HH:MM\" in quotes, got the number {value}")
        m = _HOURS_RE.match(value) if isinstance(value, str) else None
        if not m:
            self.refuse(value, key, source)
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > MINUTES_PER_DAY:
            source.fail(key, f"has an impossible time in {value!r} (00:00 to 24:00)")
        if start == end:
            source.fail(key, f"is empty ({value!r}); all day is \"00:00-24:00\"")
        return start, end


class TimeZoneName(Kind):
    """An IANA time zone name, cleaned to a Zone read from the system's zone files (not through $TZ)."""

    wanted = 'an IANA time zone name such as "Europe/Berlin", "America/New_York" or "UTC"'

    def clean(self, value: Any, key: str, source: Source) -> Zone:
        try:
            return zone_named(value)
        except UnknownZone:
            self.refuse(value, key, source)


def _window(value: Mapping[str, Any], key: str, source: Source) -> Window:
    start, end = value["hours"]
    return Window(start, end, value["machines"])


def _no_overlaps(windows: tuple[Window, ...], key: str, source: Source) -> tuple[Window, ...]:
    for index, window in enumerate(windows):
        for other in windows[:index]:
            if _overlap(window, other):
                source.fail(f"{key}[{index}].hours", f"{window.hours} overlaps {other.hours}")
    return windows


def _user_windows(value: Mapping[str, Any], key: str, source: Source) -> tuple[Window, ...]:
    if "machines" in value:
        return (Window(0, MINUTES_PER_DAY, value["machines"]),)
    return tuple(value["limits"])


def _exactly_one(value: Mapping[str, Any]) -> str | None:
    if ("machines" in value) == ("limits" in value):
        return "needs exactly one of 'machines' (all day) or 'limits' (by hours)"
    return None


MACHINES = Whole(ge=0, words={"unlimited": None})
WINDOW = Checked(Record(Schema("limit window", [
    Key("hours", Hours(), help="When the window applies, e.g. \"00:00-22:00\"; in quotes."),
    Key("machines", MACHINES, help="How many machines at most ('unlimited': no limit; 0: none)."),
], PolicyError, known_label="known"), '{hours: "HH:MM-HH:MM", machines: N}'), _window)
LIMITS = Checked(ListOf(WINDOW, 'a list like [{hours: "00:00-22:00", machines: 5}]'), _no_overlaps)
USER = Checked(Record(Schema("user override", [
    Key("machines", MACHINES, None, "How many machines at most, all day."),
    Key("limits", LIMITS, None, "Windows by hours, like the top-level 'limits'."),
], PolicyError, known_label="known", rules=[Rule("A user override gives exactly one of machines or limits.",
                                                 _exactly_one)]),
    "'machines: N' or 'limits: [...]'"), _user_windows)
USERS = Checked(
    MapOf(USER, "a mapping of user names to 'machines: N' or 'limits: [...]'", names="user"),
    lambda users, key, source: MappingProxyType({name.casefold(): w for name, w in users.items()}),
)
BLACKLIST = Checked(
    TextList("a list of user names, e.g. [mallory, eve]", non_blank=True),
    lambda names, key, source: frozenset(name.strip().casefold() for name in names),
)


@dataclass(frozen=True)
class Policy:
    """The policy file, checked. Each key is declared once, here: default, kind and help."""

    path: str
    blacklist: frozenset[str] = setting(  # case-folded user names
        frozenset(), BLACKLIST, "Users who may not use the farm at all (case does not matter).")
    timezone: Zone | None = setting(
        None, TimeZoneName(), "The time zone the hours are in, e.g. Europe/Berlin. Without it each machine "
        "judges the hours in its own system zone (not the TZ variable); name one so every machine agrees.")
    limits: tuple[Window, ...] = setting(
        (), LIMITS, "How many machines each user may use, by the policy's time zone. Hours no window covers have "
        "no limit; windows may wrap past midnight and must not overlap.")
    users: Mapping[str, tuple[Window, ...]] = setting(  # case-folded name -> windows
        MappingProxyType({}), USERS, "Per-user overrides; they replace 'limits' for that user.")
    check_every: float = setting(
        20.0, Number(gt=0, le=3600, unit="seconds"), "Seconds between an agent's checks of the policy.")

    def is_blacklisted(self, user: str) -> bool:
        return user.casefold() in self.blacklist

    def windows_for(self, user: str) -> tuple[tuple[Window, ...], str]:
        key = user.casefold()
        if key in self.users:
            return self.users[key], f"override for {user}"
        return self.limits, "default limits"

    def zone(self, machine_zone: Callable[[], Zone]) -> Zone:
        """The zone the hours are judged in: the policy's own, else this machine's (``machine_zone()``)."""
        return self.timezone if self.timezone is not None else machine_zone()

    def limit_for(self, user: str, now: datetime) -> Limit:
        """The limit at ``now`` (wall-clock time in the policy's zone: ``wall_clock(...)``), and until when."""
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


def utc_now() -> datetime:
    """The instant now, aware: the policy converts it to its own zone (a naive now would be $TZ's)."""
    return datetime.now(timezone.utc)


def wall_clock(now: datetime, zone: Zone) -> datetime:
    """``now`` as wall-clock time in ``zone`` (``Policy.zone(...)``), for ``Policy.limit_for``.

    An aware ``now`` (an instant: the agent's ``datetime.now(timezone.utc)``) is
    converted; a naive one is taken as that wall-clock time already (tests that
    speak in the lab's hours). Never pass a naive ``datetime.now()``: that is $TZ's time.
    """
    return now if now.tzinfo is None else now.astimezone(zone.tzinfo)


def _window_at(windows: tuple[Window, ...], minute: int) -> Window | None:
    return next((w for w in windows if w.contains(minute)), None)


def _machines_at(windows: tuple[Window, ...], minute: int) -> int | None:
    window = _window_at(windows, minute)
    return window.machines if window else None


def clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


POLICY_KEYS = schema_of(Policy, "Lockdown policy keys", PolicyError, known_label="known")
DEFAULT_CHECK_EVERY_S: float = POLICY_KEYS.keys["check_every"].default


# -- reading and validating ----------------------------------------------------------------
def load_policy(path: Path, fs: ShareFS, trust: FileTrust | None = None) -> Policy:
    """Read and validate the policy file; PolicyError (one line) when it cannot be used.

    ``trust`` is signed mode's check: a policy on the share must be signed with the farm key,
    so a share writer can neither lift the limits nor lock the lab out (docs/security.md).
    """
    try:
        data = read_share_file(fs, path, "policy")  # bounded and regular: a FIFO cannot block the policy check
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except ShareFileError as exc:
        raise PolicyError(str(exc)) from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file ({exc.strerror or exc})") from None
    problem = trust(path, data) if trust is not None else None
    if problem is not None:
        raise PolicyError(problem)
    return parse_policy(data, str(path))


def parse_policy(data: bytes, where: str) -> Policy:
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"{where}: larger than {MAX_POLICY_BYTES // 1024} KB; a policy is a few lines")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{where}: not UTF-8 text") from None
    doc = parse_yaml(text, where, PolicyError)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        known = ", ".join(POLICY_KEYS.keys)
        raise PolicyError(f"{where}: must hold 'key: value' settings ({known}), not a {type(doc).__name__}")
    return Policy(path=where, **POLICY_KEYS.parse(doc, where))


def _overlap(a: Window, b: Window) -> bool:
    return any(a.contains(m) and b.contains(m) for m in range(MINUTES_PER_DAY))
