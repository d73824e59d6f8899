"""Time zones read from the operating system's zone files, never from the process's environment.

The lockdown policy judges its hours ("before 22:00: 5 machines") in a zone
that whoever starts the agent must not choose: ``TZ`` moves ``datetime.now()``
and ``time.localtime()`` (on Windows too, through the C runtime) and
``PYTHONTZPATH`` moves what ``zoneinfo.ZoneInfo(name)`` reads. So:

* a named zone (``timezone: Europe/Berlin`` in the policy) is read from the
  zone folders Python was built with (sysconfig's ``TZPATH``:
  /usr/share/zoneinfo ...), then from the ``tzdata`` package (Windows has no
  zone folder; pyproject.toml installs tzdata there);
* the machine's own zone on Linux and macOS is the file /etc/localtime, named
  after its link target (``.../zoneinfo/Europe/Berlin``); without that file the
  C library uses UTC, and so does this;
* on Windows it is the zone set in the system's settings
  (``GetDynamicTimeZoneInformation``, which ignores ``TZ``), mapped to its IANA
  name with tzlocal's table of Windows zone names; a Windows zone missing from
  that table is judged at its current UTC offset (the caller reads the
  machine's zone again at each check, so a daylight-saving change is seen).
"""

from __future__ import annotations

import ctypes
import os
import re
import sysconfig
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from envy.platform.host import os_name

LOCALTIME = Path("/etc/localtime")
# zoneinfo's own default search path, for a Python built without TZPATH.
_DEFAULT_TZPATH = ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo", "/etc/zoneinfo")
# IANA names: "UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5". No dots,
# so no ".." and no way out of the zone folder; no leading slash.
_NAME_RE = re.compile(r"^[A-Za-z0-9_+\-]{1,40}(?:/[A-Za-z0-9_+\-]{1,40}){0,3}$")
MAX_ZONE_FILE_BYTES = 256 * 1024  # the largest TZif file is a few KB


class UnknownZone(ValueError):
    """Not the name of a time zone in the system's zone files or the tzdata package."""


@dataclass(frozen=True)
class Zone:
    """A time zone and the name it goes by (an IANA name, or what the system calls it)."""

    name: str
    tzinfo: tzinfo = field(compare=False, repr=False)


def zone_named(name: str, folders: tuple[str, ...] | None = None) -> Zone:
    """The IANA zone ``name`` (e.g. "Europe/Berlin"); UnknownZone when there is none by that name.

    ``folders`` replaces the system's zone folders (tests); the tzdata package is looked in last.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise UnknownZone(name)
    for folder in _system_folders() if folders is None else folders:
        candidate = Path(folder, *name.split("/"))
        if candidate.is_file():
            try:
                return Zone(name, _read_zone(candidate, name))
            except (OSError, ValueError):  # not a zone file ("leapseconds"), or unreadable
                continue
    try:
        packaged = resources.files("tzdata").joinpath("zoneinfo", *name.split("/"))
        if packaged.is_file():
            with packaged.open("rb") as f:
                return Zone(name, _zone_from(f.read(MAX_ZONE_FILE_BYTES + 1), name))
    except (ImportError, OSError, ValueError):
        pass
    raise UnknownZone(name)


def machine_zone() -> Zone:
    """This machine's own time zone, as the system is set up (not ``TZ``)."""
    if os_name() == "windows":
        return _windows_zone()
    return zone_of_localtime(LOCALTIME)


def zone_of_localtime(localtime: Path) -> Zone:
    """The zone in ``localtime`` (/etc/localtime), named after its link target when it is a link."""
    try:
        zone = _read_zone(localtime, "localtime")
    except FileNotFoundError:
        return Zone("UTC", timezone.utc)  # glibc and macOS: no /etc/localtime means UTC
    except (OSError, ValueError) as exc:
        return Zone(f"UTC ({localtime} is unusable: {exc})", timezone.utc)
    name = _link_zone_name(localtime) or _etc_timezone(localtime.parent / "timezone") or "localtime"
    return Zone(name, zone)


def _system_folders() -> tuple[str, ...]:
    built = sysconfig.get_config_var("TZPATH")
    if isinstance(built, str) and built:
        return tuple(p for p in built.split(os.pathsep) if os.path.isabs(p))
    return () if os_name() == "windows" else _DEFAULT_TZPATH


def _read_zone(path: Path, key: str) -> ZoneInfo:
    with open(path, "rb") as f:
        return _zone_from(f.read(MAX_ZONE_FILE_BYTES + 1), key)


def _zone_from(data: bytes, key: str) -> ZoneInfo:
    import io

    if len(data) > MAX_ZONE_FILE_BYTES:
        raise ValueError("too large for a zone file")
    return ZoneInfo.from_file(io.BytesIO(data), key=key)  # ValueError when it is not a TZif file


def _link_zone_name(localtime: Path) -> str | None:
    """"Europe/Berlin" from a link to ".../zoneinfo/Europe/Berlin" (the first link's name, as the admin chose)."""
    for target in (_readlink(localtime), os.path.realpath(localtime)):
        if target and "zoneinfo/" in target.replace(os.sep, "/"):
            name = target.replace(os.sep, "/").rsplit("zoneinfo/", 1)[1]
            if _NAME_RE.match(name):
                return name
    return None


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _etc_timezone(path: Path) -> str | None:
    """Debian's /etc/timezone ("Europe/Berlin"), when /etc/localtime is a copy rather than a link."""
    try:
        name = path.read_text(encoding="utf-8", errors="replace")[:100].strip()
    except OSError:
        return None
    return name if _NAME_RE.match(name) else None


# -- Windows ---------------------------------------------------------------------------------------
# Written from the Win32 documentation (GetDynamicTimeZoneInformation); the layout is checked on
# Linux against the documented size (432 bytes). WCHAR arrays are uint16 so the size is the same
# on every OS (ctypes' c_wchar is 4 bytes on Linux).
TIME_ZONE_ID_INVALID = 0xFFFFFFFF
TIME_ZONE_ID_STANDARD = 1
TIME_ZONE_ID_DAYLIGHT = 2


class SYSTEMTIME(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint16) for n in (
        "wYear", "wMonth", "wDayOfWeek", "wDay", "wHour", "wMinute", "wSecond", "wMilliseconds")]


class DYNAMIC_TIME_ZONE_INFORMATION(ctypes.Structure):
    _fields_ = [
        ("Bias", ctypes.c_int32),
        ("StandardName", ctypes.c_uint16 * 32),
        ("StandardDate", SYSTEMTIME),
        ("StandardBias", ctypes.c_int32),
        ("DaylightName", ctypes.c_uint16 * 32),
        ("DaylightDate", SYSTEMTIME),
        ("DaylightBias", ctypes.c_int32),
        ("TimeZoneKeyName", ctypes.c_uint16 * 128),
        ("DynamicDaylightTimeDisabled", ctypes.c_uint8),
    ]


def wide_text(chars: ctypes.Array[ctypes.c_uint16]) -> str:
    return "".join(map(chr, chars)).split("\0", 1)[0]


def windows_zone_from(info: DYNAMIC_TIME_ZONE_INFORMATION, which: int) -> Zone:
    """The zone ``info`` describes: its IANA zone when the key name is known, else its offset now."""
    key = wide_text(info.TimeZoneKeyName) or wide_text(info.StandardName)
    iana = _windows_to_iana(key)
    if iana:
        try:
            return zone_named(iana)
        except UnknownZone:
            pass
    extra = {TIME_ZONE_ID_DAYLIGHT: info.DaylightBias, TIME_ZONE_ID_STANDARD: info.StandardBias}.get(which, 0)
    minutes = -(info.Bias + extra)  # Bias is UTC minus local time, in minutes
    if abs(minutes) >= 24 * 60:
        return Zone(f"UTC (Windows gave an impossible offset for {key or 'its zone'})", timezone.utc)
    offset = timezone(timedelta(minutes=minutes), key) if key else timezone(timedelta(minutes=minutes))
    return Zone(f"{key or 'unnamed Windows zone'} (UTC{_signed(minutes)}, now)", offset)


def _signed(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _windows_to_iana(key: str) -> str | None:
    try:
        from tzlocal.windows_tz import win_tz  # CLDR's table of Windows zone names; installed on Windows
    except ImportError:
        return None
    found = win_tz.get(key)
    return found if isinstance(found, str) else None


def _windows_zone() -> Zone:
    info = DYNAMIC_TIME_ZONE_INFORMATION()
    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    k32.GetDynamicTimeZoneInformation.restype = ctypes.c_uint32
    k32.GetDynamicTimeZoneInformation.argtypes = [ctypes.POINTER(DYNAMIC_TIME_ZONE_INFORMATION)]
    which = k32.GetDynamicTimeZoneInformation(ctypes.byref(info))
    if which == TIME_ZONE_ID_INVALID:
        return Zone(f"UTC (Windows gave no time zone: error {ctypes.get_last_error()})",  # type: ignore[attr-defined]
                    timezone.utc)
    return windows_zone_from(info, which)
