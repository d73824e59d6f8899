"""The policy's hours are in the policy file's ``timezone``, else the machine's system zone: never ``TZ``'s.

A student who starts an agent with ``TZ=Pacific/Kiritimati`` (UTC+14) must not
move the policy's 22:00. The agents here are real ``Agent`` objects (the
``Lab`` of test_policy.py) judged at fixed instants; an agent subprocess started
with a far ``TZ`` is in test_policy_agents.py. The machine's own zone is read
from real zone files: /etc/localtime, and links and copies of /usr/share/zoneinfo.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import sys
import time
import zoneinfo
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from envy.platform.time_zone import (
    DYNAMIC_TIME_ZONE_INFORMATION,
    TIME_ZONE_ID_DAYLIGHT,
    UnknownZone,
    machine_zone,
    windows_zone_from,
    zone_named,
    zone_of_localtime,
)
from envy.policy.report import describe_policy
from envy.policy.rules import parse_policy, wall_clock
from envy.share.fs import REAL_FS
from test_policy import Lab

ZONEINFO = Path("/usr/share/zoneinfo")
NOON_UTC = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)  # Kiritimati: Sat 21 Nov, 02:00
OFFICE_HOURS_NONE = 'limits:\n  - {hours: "08:00-18:00", machines: 0}\ncheck_every: 1\n'
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the machine's zone is /etc/localtime on POSIX")


@pytest.fixture
def far_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process's TZ set to UTC+14, as a student's start script could; undone afterwards."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield "Pacific/Kiritimati"
    monkeypatch.undo()
    time.tzset()


def test_tz_really_moves_this_process_local_time(far_tz: str) -> None:
    # What makes the tests below meaningful: datetime.now() follows TZ.
    assert datetime.now().astimezone().utcoffset() == timedelta(hours=14)


# -- the policy's own zone, at a fixed instant -------------------------------------------------------
@pytest.mark.parametrize(
    ("zone", "instant", "locked"),
    [
        ("UTC", NOON_UTC, True),  # 12:00 in UTC: inside 08:00-18:00
        ("Pacific/Kiritimati", NOON_UTC, False),  # the same instant is 02:00 there: outside
        ("UTC", NOON_UTC - timedelta(hours=16), False),  # 20:00 the evening before in UTC
        ("Pacific/Kiritimati", NOON_UTC - timedelta(hours=16), True),  # 10:00 in Kiritimati
    ],
)
def test_the_enforcer_judges_the_windows_in_the_policys_zone(
    tmp_path: Path, far_tz: str, zone: str, instant: datetime, locked: bool
) -> None:
    lab = Lab(tmp_path, f"timezone: {zone}\n" + OFFICE_HOURS_NONE)
    lab.wall = instant  # an aware instant, as the agent's own clock gives
    lab.start("lab1-01")
    assert lab.locked() == (["lab1-01"] if locked else [])
    if locked:
        reason = lab.agents["lab1-01"].snapshot().locked_reason
        assert reason == "student may use no machines until 18:00 (default limits, 08:00-18:00)"


def test_the_lock_moves_with_the_policys_clock_not_the_agents(tmp_path: Path, far_tz: str) -> None:
    lab = Lab(tmp_path, "timezone: Pacific/Kiritimati\n" + OFFICE_HOURS_NONE)
    lab.wall = datetime(2026, 11, 20, 17, 59, tzinfo=timezone.utc)  # 07:59 in Kiritimati
    lab.start("lab1-01")
    assert lab.locked() == []
    lab.wall += timedelta(minutes=2)  # 08:01 there (18:01 in UTC, where the window has closed)
    lab.tick(1.5)
    assert lab.locked() == ["lab1-01"]


def test_envy_io_policy_says_which_zone_it_judged_by(tmp_path: Path, far_tz: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("timezone: Pacific/Kiritimati\n" + OFFICE_HOURS_NONE)
    text = describe_policy(policy, "student", now=NOON_UTC, fs=REAL_FS)
    assert text.splitlines() == [
        f"policy file: {policy}",
        "time zone: Pacific/Kiritimati (the policy's timezone)",
        "student: not blacklisted",
        "now (Sat 02:00 Pacific/Kiritimati): no limit (default limits: no window covers 02:00)",
        "from 08:00: at most 0 machines (default limits, 08:00-18:00)",
    ]


def test_a_policy_zone_is_read_from_the_system_zone_files_not_through_pythontzpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PYTHONTZPATH is as easy to set as TZ: a fake "Europe/Berlin" that is really UTC+14.
    (tmp_path / "Europe").mkdir()
    shutil.copy(ZONEINFO / "Pacific" / "Kiritimati", tmp_path / "Europe" / "Berlin")
    monkeypatch.setenv("PYTHONTZPATH", str(tmp_path))
    zoneinfo.reset_tzpath()
    try:
        fooled = zoneinfo.ZoneInfo.no_cache("Europe/Berlin")
        assert fooled.utcoffset(NOON_UTC.replace(tzinfo=None)) == timedelta(hours=14)  # zoneinfo itself is fooled
        berlin = parse_policy(b"timezone: Europe/Berlin\n", "policy.yaml").timezone
        assert berlin is not None and berlin.name == "Europe/Berlin"
        assert NOON_UTC.astimezone(berlin.tzinfo).utcoffset() == timedelta(hours=1)
    finally:
        monkeypatch.undo()
        zoneinfo.reset_tzpath()


def test_a_zone_is_found_in_the_tzdata_package_where_the_system_has_no_zone_files() -> None:
    # As on Windows: no zone folder, only the tzdata package (a Windows dependency in pyproject.toml).
    kiritimati = zone_named("Pacific/Kiritimati", folders=())
    assert NOON_UTC.astimezone(kiritimati.tzinfo).hour == 2


def test_a_zone_file_that_is_not_one_is_no_zone(tmp_path: Path) -> None:
    (tmp_path / "Fake").mkdir()
    (tmp_path / "Fake" / "Zone").write_bytes(b"not a TZif file")
    with pytest.raises(UnknownZone):
        zone_named("Fake/Zone", folders=(str(tmp_path),))


# -- without a timezone: the machine's system zone, not TZ ---------------------------------------------
@posix_only
def test_without_a_timezone_the_machine_zone_is_etc_localtime_even_when_tz_is_set(far_tz: str) -> None:
    with open("/etc/localtime", "rb") as f:
        system = zoneinfo.ZoneInfo.from_file(f)
    zone = machine_zone()
    for month in (1, 7):  # both sides of daylight saving, where the zone has it
        instant = datetime(2026, month, 15, 12, 0, tzinfo=timezone.utc)
        assert instant.astimezone(zone.tzinfo).utcoffset() == instant.astimezone(system).utcoffset()
    if os.path.islink("/etc/localtime"):
        assert zone.name == os.readlink("/etc/localtime").split("zoneinfo/")[-1]  # "Etc/UTC", "Europe/Berlin"
    # and the policy without a timezone, judged at an instant, follows /etc/localtime's wall clock
    policy = parse_policy(OFFICE_HOURS_NONE.encode(), "policy.yaml")
    judged = wall_clock(NOON_UTC, policy.zone(machine_zone))
    assert judged.hour == NOON_UTC.astimezone(system).hour != NOON_UTC.astimezone(zoneinfo.ZoneInfo(far_tz)).hour


@posix_only
def test_envy_io_policy_without_a_timezone_names_the_machine_zone_not_tz(tmp_path: Path, far_tz: str) -> None:
    with open("/etc/localtime", "rb") as f:
        system = zoneinfo.ZoneInfo.from_file(f)
    policy = tmp_path / "policy.yaml"
    policy.write_text(OFFICE_HOURS_NONE)
    lines = describe_policy(policy, "student", now=NOON_UTC, fs=REAL_FS).splitlines()
    name = machine_zone().name
    assert lines[1].startswith(f"time zone: {name} (this machine's own: the policy names no timezone")
    assert lines[3].startswith(f"now ({NOON_UTC.astimezone(system):%a %H:%M} {name}): ")


def test_the_machine_zone_is_named_after_the_localtime_link(tmp_path: Path) -> None:
    link = tmp_path / "localtime"
    link.symlink_to(ZONEINFO / "Asia" / "Tokyo")
    zone = zone_of_localtime(link)
    assert zone.name == "Asia/Tokyo" and NOON_UTC.astimezone(zone.tzinfo).hour == 21


def test_a_localtime_copy_is_named_by_etc_timezone_or_called_localtime(tmp_path: Path) -> None:
    copy = tmp_path / "localtime"
    shutil.copy(ZONEINFO / "America" / "New_York", copy)
    assert zone_of_localtime(copy).name == "localtime"
    (tmp_path / "timezone").write_text("America/New_York\n")
    zone = zone_of_localtime(copy)
    assert zone.name == "America/New_York" and NOON_UTC.astimezone(zone.tzinfo).hour == 7


def test_no_localtime_is_utc_and_a_broken_one_says_so(tmp_path: Path) -> None:
    assert zone_of_localtime(tmp_path / "missing").name == "UTC"  # what the C library does
    broken = tmp_path / "localtime"
    broken.write_bytes(b"\x00" * 10)
    zone = zone_of_localtime(broken)
    assert zone.name.startswith(f"UTC ({broken} is unusable") and zone.tzinfo is timezone.utc


def test_the_agent_warns_once_that_a_policy_should_name_its_zone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="envy.policy.enforce")
    lab = Lab(tmp_path, OFFICE_HOURS_NONE)
    lab.wall = NOON_UTC
    lab.start("lab1-01")
    for _ in range(3):
        lab.tick(1.5)
    warnings = [r.getMessage() for r in caplog.records if "names no timezone" in r.getMessage()]
    assert warnings == [
        f"{lab.policy} names no timezone: judging its hours in this machine's zone, {machine_zone().name}; "
        "a policy should name one (timezone: Europe/Berlin)"
    ]
    caplog.clear()
    lab2 = Lab(tmp_path / "named", "timezone: UTC\n" + OFFICE_HOURS_NONE)
    lab2.start("lab2-01")
    assert not [r for r in caplog.records if "names no timezone" in r.getMessage()]


# -- Windows: the zone set in the system's settings (the structure is checked here, run there) ----------
def test_the_windows_structure_has_the_documented_size() -> None:
    assert ctypes.sizeof(DYNAMIC_TIME_ZONE_INFORMATION) == 432


def _windows_info(key: str, bias: int, daylight_bias: int) -> DYNAMIC_TIME_ZONE_INFORMATION:
    info = DYNAMIC_TIME_ZONE_INFORMATION()
    info.Bias, info.DaylightBias = bias, daylight_bias
    for i, c in enumerate(key):
        info.TimeZoneKeyName[i] = ord(c)
    return info


def test_a_windows_zone_is_its_iana_zone() -> None:
    zone = windows_zone_from(_windows_info("W. Europe Standard Time", -60, -60), TIME_ZONE_ID_DAYLIGHT)
    assert zone.name == "Europe/Berlin"
    assert datetime(2026, 7, 1, 12, tzinfo=timezone.utc).astimezone(zone.tzinfo).hour == 14


def test_an_unknown_windows_zone_is_judged_at_its_offset_now() -> None:
    zone = windows_zone_from(_windows_info("Made Up Standard Time", -60, -60), TIME_ZONE_ID_DAYLIGHT)
    assert zone.name == "Made Up Standard Time (UTC+02:00, now)"
    assert NOON_UTC.astimezone(zone.tzinfo).hour == 14
