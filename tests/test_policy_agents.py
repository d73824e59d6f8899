"""The lockdown policy with real agent subprocesses on a real temporary share.

``envy agent --policy`` applies the policy: it refuses a blacklisted user,
stands down over the machine limit and gives its place up when it quits. The
same rules are covered in-process by test_policy.py.
"""

from __future__ import annotations

import sys
import zoneinfo
from datetime import datetime, timezone, tzinfo
from pathlib import Path

import pytest

from farm import Farm, wait_for


def write_policy(path: Path, machines: int | str, blacklist: tuple[str, ...] = ()) -> Path:
    path.write_text(
        f"blacklist: [{', '.join(blacklist)}]\n"
        f'limits:\n  - {{hours: "00:00-24:00", machines: {machines}}}\n'
        "check_every: 0.3\n"
    )
    return path


def state(farm: Farm, host: str) -> str | None:
    return (farm.status(host) or {}).get("state")


def test_blacklisted_user_refuses_to_start_with_one_line_and_non_zero_exit(farm: Farm, tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml", 5, blacklist=("someone", "student"))
    agent = farm.start_agent("lab1-01", extra=["--policy", str(policy)])
    code = agent.wait_exit(20)
    message = f"user student may not use the render farm (blacklisted in {policy}); ask the lab's admin"
    output = agent.output()
    assert code != 0
    assert output.strip().splitlines()[-1] == f"envy agent: {message}"  # after the console log lines
    assert "Traceback" not in output
    assert message in farm.log("lab1-01")  # also in the share log: pythonw at log-in has no console
    assert farm.status("lab1-01") is None  # it never announced itself
    assert not (farm.share / "seats").exists()  # and claimed nothing


def test_limit_of_two_with_three_agents_one_stands_down_and_resumes_when_one_quits(farm: Farm, tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml", 2)
    hosts = ["lab1-01", "lab1-02", "lab1-03"]
    agents = {}
    for host in hosts:  # one after the other: the third to arrive is the newest
        agents[host] = farm.start_agent(host, extra=["--policy", str(policy)])
        farm.wait_heartbeat(agents[host])
    wait_for(
        lambda: [state(farm, h) for h in hosts] == ["idle", "idle", "locked"], 15, "the newest agent to stand down"
    )
    reason = (farm.status("lab1-03") or {}).get("locked_reason", "")
    assert reason == "student may use at most 2 machines (default limits, 00:00-24:00); in use by lab1-01, lab1-02"
    assert "locked by the lab policy: " + reason in farm.log("lab1-03")
    farm.send("lab1-01 quit()")
    assert agents["lab1-01"].wait_exit(15) == 0
    wait_for(lambda: state(farm, "lab1-03") == "idle", 15, "the locked agent to resume by itself")
    assert "unlocked" in farm.log("lab1-03")
    assert state(farm, "lab1-02") == "idle"


@pytest.mark.parametrize("attempt", range(3))
def test_two_agents_starting_at_the_same_moment_with_limit_one_exactly_one_wins(tmp_path: Path, attempt: int) -> None:
    farm = Farm(tmp_path)
    try:
        policy = write_policy(tmp_path / "policy.yaml", 1)
        pair = [farm.start_agent(h, extra=["--policy", str(policy)]) for h in ("lab2-01", "lab2-02")]
        for agent in pair:
            farm.wait_heartbeat(agent)
        states = wait_for(
            lambda: sorted(s for s in (state(farm, a.host) for a in pair)) if all(
                state(farm, a.host) in ("idle", "locked") for a in pair) else None,
            15, "both agents to settle",
        )
        assert states == ["idle", "locked"]
        seats = sorted(p.name for p in (farm.share / "seats" / "student").iterdir())
        assert seats == ["seat.1"]
    finally:
        farm.stop_all()


# -- the policy's time zone, not the agent's TZ ---------------------------------------------------------
def _minute(when: datetime) -> int:
    return when.hour * 60 + when.minute


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _far_zone(judged: tzinfo, now: datetime) -> str:
    """A TZ whose wall clock is hours away from ``judged``'s now (so ±1 h windows cannot both hold)."""
    here = _minute(now.astimezone(judged))
    for name in ("Pacific/Kiritimati", "Asia/Kolkata", "America/Los_Angeles"):
        there = _minute(now.astimezone(zoneinfo.ZoneInfo(name)))
        if min(abs(here - there), 1440 - abs(here - there)) >= 180:
            return name
    raise AssertionError("no far zone")


@pytest.mark.parametrize("policy_zone", ["UTC", "Pacific/Kiritimati", None])
def test_an_agent_started_with_a_far_tz_judges_hours_in_the_policys_zone(
    farm: Farm, tmp_path: Path, policy_zone: str | None
) -> None:
    """A window of no machines around now, in the policy's zone (None: this machine's /etc/localtime).
    The agent runs with TZ set hours away, where the window does not hold: it must still be locked."""
    if policy_zone is None and sys.platform == "win32":
        pytest.skip("the machine's own zone is compared with /etc/localtime")
    if policy_zone is None:
        with open("/etc/localtime", "rb") as f:
            judged: tzinfo = zoneinfo.ZoneInfo.from_file(f)
    else:
        judged = zoneinfo.ZoneInfo(policy_zone)
    now = datetime.now(timezone.utc)
    tz = _far_zone(judged, now)
    start, end = (_minute(now.astimezone(judged)) - 60) % 1440, (_minute(now.astimezone(judged)) + 60) % 1440
    outside = _minute(now.astimezone(zoneinfo.ZoneInfo(tz)))
    assert not (start <= outside < end if start < end else outside >= start or outside < end)  # TZ's now is free
    hours = f"{_clock(start)}-{_clock(end)}"
    policy = tmp_path / "policy.yaml"
    policy.write_text((f"timezone: {policy_zone}\n" if policy_zone else "")
                      + f'limits:\n  - {{hours: "{hours}", machines: 0}}\ncheck_every: 0.3\n')
    farm.env["TZ"] = tz
    agent = farm.start_agent("lab1-01", extra=["--policy", str(policy)])
    farm.wait_heartbeat(agent)
    wait_for(lambda: state(farm, "lab1-01") == "locked", 15, "the agent to stand down in the policy's window")
    reason = (farm.status("lab1-01") or {}).get("locked_reason", "")
    assert reason == f"student may use no machines until {_clock(end)} (default limits, {hours})"
    no_zone_warned = "names no timezone: judging its hours in this machine's zone" in farm.log("lab1-01")
    assert no_zone_warned == (policy_zone is None)
    farm.marker("lab1-01")  # locked, it still answers built-in commands
