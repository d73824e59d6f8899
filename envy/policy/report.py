"""``envy-io policy``: what the lockdown policy means for one user now, and why.

A plain function returning text, so the shell command, the one-shot command
and tests share it. It reads the policy file and lists the user's seats (who
holds them, as written in the seat files: a one-shot command has watched no
heartbeats, so it does not judge who is alive).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from envy.platform.files import others_can_write
from envy.platform.time_zone import Zone, machine_zone
from envy.policy.rules import Limit, Policy, clock_text, load_policy, plural, utc_now, wall_clock
from envy.policy.seats import Seat, SeatOwner, Seats
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

NO_POLICY = "no lockdown policy is set (agents use --policy, ENVY_POLICY or 'policy:' in config.yaml)"


def describe_policy(
    path: str | Path | None,
    user: str,
    *,
    now: datetime | None = None,
    layout: ShareLayout | None = None,
    fs: ShareFS,
    zone: Callable[[], Zone] = machine_zone,
) -> str:
    """Several lines: the file, the zone, blacklisted or not, the limit now and its next change, the seats.

    ``now`` is an instant (aware; default: now) or, for tests, a naive wall-clock
    time in the policy's zone; ``zone`` is this machine's own zone, used when the
    policy names none (the same rule as the agents: envy/policy/enforce.py).

    Raises PolicyError (one line naming the file and key) when the file is
    missing or invalid: the agents would stand down, and the user should know why.
    """
    if not path:
        return NO_POLICY
    path = Path(path)
    policy = load_policy(path, fs)
    judged_in = policy.zone(zone)
    now = wall_clock(utc_now() if now is None else now, judged_in)
    lines = [f"policy file: {path}", _zone_line(policy, judged_in)]
    try:
        if others_can_write(fs.stat(path)):
            lines.append("warning: other users can write this file; ask the admin to make it read-only for them")
    except OSError:
        pass
    if policy.is_blacklisted(user):
        lines.append(f"{user}: blacklisted -- your agents refuse to start (ask the lab's admin)")
        return "\n".join(lines)
    lines.append(f"{user}: not blacklisted")
    limit = policy.limit_for(user, now)
    lines.append(f"now ({now:%a %H:%M} {judged_in.name}): {_amount(limit.machines)} ({limit.why})")
    if limit.until is not None:
        later = policy.limit_for(user, now.replace(hour=limit.until // 60, minute=limit.until % 60))
        lines.append(f"from {clock_text(limit.until)}: {_amount(limit.then)} ({later.why})")
    else:
        lines.append("this applies all day")
    if layout is not None:
        lines.append(_seats_line(limit, user, layout, fs))
    return "\n".join(lines)


def _zone_line(policy: Policy, judged_in: Zone) -> str:
    if policy.timezone is not None:
        return f"time zone: {judged_in.name} (the policy's timezone)"
    return (f"time zone: {judged_in.name} (this machine's own: the policy names no timezone, "
            "so machines set to other zones judge its hours differently)")


def _amount(machines: int | None) -> str:
    return "no limit" if machines is None else f"at most {plural(machines, 'machine')}"


def _seats_line(limit: Limit, user: str, layout: ShareLayout, fs: ShareFS) -> str:
    seats = Seats(layout, user, SeatOwner("", 0, ""), fs)
    try:
        held: list[Seat] = seats.scan()
    except OSError as exc:
        return f"seats in use: unknown (cannot read {seats.folder}: {exc})"
    if not held:
        return "seats in use: none (no agent of yours is working)"
    hosts = ", ".join(f"{s.number}:{s.owner.host if s.owner else '?'}" for s in held)
    over = ""
    if limit.machines is not None and any(s.number > limit.machines for s in held):
        over = f"; seats above {limit.machines} are given up at the agents' next check"
    return f"seats in use: {len(held)} ({hosts}){over}; your other agents are locked until a seat is free"
