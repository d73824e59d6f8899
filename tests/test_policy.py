"""The lockdown policy in-process: the file's rules, seats on a real temp share, and the enforcer.

Agents here are real ``Agent`` objects on a real share folder, driven by
calling their policy hook with an injected wall clock (naive: the wall-clock
time in the policy's zone; test_policy_time_zone.py passes aware instants) and
monotonic clock (liveness), so hours and dead timeouts pass instantly.
Real agent subprocesses are in test_policy_agents.py.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest

from envy.agent.agent import Agent
from envy.agent.build import build_agent
from envy.config import Config
from envy.platform.dirs import LocalDirs
from envy.platform.time_zone import zone_named
from envy.policy.enforce import PolicyEnforcer, PolicyRefusal
from envy.policy.report import describe_policy
from envy.policy.rules import PolicyError, parse_policy
from envy.policy.seats import SeatOwner, Seats, seat_folder
from envy.protocol.instructions import stamp
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share

TODAY = """\
blacklist: [Mallory]
limits:
  - {hours: "00:00-22:00", machines: 5}
users:
  alice: {machines: 10}
  bob:
    limits:
      - {hours: "22:00-07:00", machines: 2}
"""


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute)


# -- the policy file ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "when", "machines"),
    [
        ("student", at(9), 5),
        ("student", at(21, 59), 5),
        ("student", at(22), None),  # after 22:00: no limit
        ("student", at(23, 30), None),
        ("student", at(0), 5),
        ("ALICE", at(12), 10),  # user names ignore case
        ("alice", at(23), 10),
        ("bob", at(12), None),  # an override replaces the default windows
        ("bob", at(23), 2),
        ("bob", at(6, 59), 2),  # a window that wraps past midnight
        ("bob", at(7), None),
    ],
)
def test_limit_by_local_time_with_overrides(user: str, when: datetime, machines: int | None) -> None:
    assert parse_policy(TODAY.encode(), "policy.yaml").limit_for(user, when).machines == machines


def test_limit_says_why_and_until_when() -> None:
    policy = parse_policy(TODAY.encode(), "policy.yaml")
    limit = policy.limit_for("student", at(14, 3))
    assert (limit.machines, limit.until, limit.then) == (5, 22 * 60, None)
    assert limit.describe() == "at most 5 machines until 22:00 (default limits, 00:00-22:00)"
    assert (
        policy.is_blacklisted("mallory") and policy.is_blacklisted("MALLORY") and not policy.is_blacklisted("student")
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("limits: 5", "'limits' must be a list"),
        ("limits:\n  - {hours: 22:00-24:00, machines: 5}", None),  # unquoted but with a dash: still text
        ("limits:\n  - {hours: 22:00, machines: 5}", "'limits[0].hours' must be text \"HH:MM-HH:MM\" in quotes"),
        ("limits:\n  - {hours: '9-17', machines: 5}", "'limits[0].hours' must be \"HH:MM-HH:MM\""),
        ("limits:\n  - {hours: '09:00-25:00', machines: 5}", "'limits[0].hours' has an impossible time"),
        ("limits:\n  - {hours: '09:00-09:00', machines: 5}", "'limits[0].hours' is empty"),
        ("limits:\n  - {hours: '00:00-22:00', machines: -1}", "'limits[0].machines' must be a whole number >= 0"),
        ("limits:\n  - {hours: '00:00-22:00', machines: lots}", "'limits[0].machines'"),
        ("limits:\n  - {hours: '00:00-22:00'}", "'limits[0]' lacks 'machines'"),
        ("limits:\n  - {hours: '00:00-22:00', machines: 5}\n  - {hours: '21:00-23:00', machines: 1}",
         "'limits[1].hours' 21:00-23:00 overlaps 00:00-22:00"),
        ("blacklist: mallory", "'blacklist' must be a list of user names"),
        ("users: {bob: 3}", "'users.bob' must be 'machines: N' or 'limits: [...]'"),
        ("users: {bob: {machines: 2, limits: []}}", "'users.bob' needs exactly one of"),
        ("users: {bob: {machine: 2}}", "unknown key 'users.bob.machine'"),
        ("check_every: 0", "'check_every' must be a number of seconds"),
        ("blacklst: [x]", "unknown key 'blacklst' (known: blacklist, timezone, limits, users, check_every)"),
        ("timezone: Mars/Olympus_Mons",
         "'timezone' must be an IANA time zone name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\", "
         "got 'Mars/Olympus_Mons'"),
        ("timezone: ../../../etc/passwd", "'timezone' must be an IANA time zone name"),  # never a path
        ("timezone: leapseconds", "'timezone' must be an IANA time zone name"),  # in the zone folder, not a zone
        ("timezone: 5", "'timezone' must be an IANA time zone name"),
        ("timezone:", "'timezone' must be an IANA time zone name"),
        ("timezone: Europe/Berlin", None),
        ("limits: [\n", "is not valid YAML"),
        ("- just a list", "must hold 'key: value' settings"),
    ],
)
def test_policy_errors_are_one_line_naming_file_and_key(text: str, expected: str | None) -> None:
    if expected is None:
        parse_policy(text.encode(), "/admin/policy.yaml")
        return
    with pytest.raises(PolicyError) as info:
        parse_policy(text.encode(), "/admin/policy.yaml")
    message = str(info.value)
    assert message.startswith("/admin/policy.yaml") and "\n" not in message
    assert expected in message


# -- seats on a real share -----------------------------------------------------------------------
@pytest.fixture
def layout(tmp_path: Path) -> ShareLayout:
    init_share(tmp_path / "share", "student", fs=REAL_FS)
    return ShareLayout(tmp_path / "share")


def seats_for(layout: ShareLayout, host: str, nonce: str = "0000aaaa", pid: int = 1) -> Seats:
    seats = Seats(layout, "student", SeatOwner(host, pid, nonce), dead_after=3, fs=REAL_FS)
    seats.ensure_folder()
    return seats


@pytest.mark.parametrize("attempt", range(5))
def test_claimers_racing_for_the_last_seat_exactly_one_wins(layout: ShareLayout, attempt: int) -> None:
    claimers = [seats_for(layout, f"lab1-{i:02d}", nonce=f"{i:08x}") for i in range(8)]
    start = threading.Barrier(len(claimers))
    won: list[int | None] = [None] * len(claimers)

    def claim(i: int) -> None:
        start.wait()
        won[i] = claimers[i].claim(1, [])

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(claimers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(w for w in won if w is not None) == [1]
    assert [s.number for s in claimers[0].scan()] == [1]


def test_lowest_free_seat_and_no_limit(layout: ShareLayout) -> None:
    a, b, c, d = (seats_for(layout, h) for h in ("lab1-01", "lab1-02", "lab1-03", "lab1-04"))
    assert a.claim(2, a.scan()) == 1 and b.claim(2, b.scan()) == 2
    assert c.claim(2, c.scan()) is None
    assert c.claim(2, []) is None  # a stale (empty) listing does not fool the exclusive create
    assert c.claim(None, c.scan()) == 3  # no limit: there is always a seat
    a.release()
    assert a.held is None and [s.number for s in b.scan()] == [2, 3]
    assert d.claim(2, d.scan()) == 1


def test_a_take_over_never_removes_a_seat_claimed_again_meanwhile(layout: ShareLayout) -> None:
    dead = seats_for(layout, "lab1-01", nonce="dead0001")
    dead.claim(1, [])
    judged = dead.scan()[0]
    reclaimer, fresh = seats_for(layout, "lab1-02"), seats_for(layout, "lab1-03")
    assert reclaimer.take_over(judged)  # freed: the file still held what was judged
    assert fresh.claim(1, []) == 1  # a live agent takes the number again
    assert not reclaimer.take_over(judged)  # a second, late reclaimer must not remove the live seat
    assert fresh.still_mine()
    assert sorted(p.name for p in seat_folder(layout, "student").iterdir()) == ["seat.1"]


# -- the enforcer on real Agent objects ------------------------------------------------------------
class Lab:
    """A few agents of one user on one share, with the lab's wall clock and a monotonic clock we move."""

    def __init__(self, tmp_path: Path, policy: str, user: str = "student") -> None:
        self.root = tmp_path
        self.layout = ShareLayout(tmp_path / "share")
        if not self.layout.is_mounted(fs=REAL_FS):
            init_share(self.layout.root, user, fs=REAL_FS)
        self.policy = tmp_path / "policy.yaml"
        self.policy.write_text(policy)
        self.user = user
        self.wall = at(14)
        self.mono = 1000.0
        self.agents: dict[str, Agent] = {}
        self.enforcers: dict[str, PolicyEnforcer] = {}

    def start(self, host: str) -> PolicyEnforcer:
        config = Config(share=str(self.layout.root), heartbeat=0.5, dead_after=3, policy=str(self.policy))
        dirs = LocalDirs(state=self.root / "state", config=self.root / "config")
        agent = build_agent(config, self.layout, host, self.user, dirs, fs=REAL_FS, log_dir=self.root / "logs" / host,
                            policy_now=lambda: self.wall, policy_clock=lambda: self.mono)
        if self.layout.is_mounted(REAL_FS):
            agent._wait_for_share()  # as run() does first: the share is there, so status files may be written
        agent.check_policy()  # as run() does next: the first status already says "locked" when it is
        enforcer = agent.policy
        assert isinstance(enforcer, PolicyEnforcer)
        self.agents[host], self.enforcers[host] = agent, enforcer
        agent.heartbeat.beat()
        return enforcer

    def tick(self, seconds: float, *, dead: tuple[str, ...] = ()) -> None:
        """Time passes: live agents heartbeat, then every agent runs its periodic check."""
        self.mono += seconds
        for host, agent in self.agents.items():
            if host not in dead:
                agent.heartbeat.beat()
        for host in self.enforcers:
            if host not in dead:
                self.agents[host].check_policy()

    def locked(self) -> list[str]:
        return sorted(h for h, a in self.agents.items() if a.snapshot().state == "locked")


LIMIT_2 = 'limits:\n  - {hours: "00:00-22:00", machines: 2}\ncheck_every: 1\n'


def test_over_the_limit_the_newest_stands_down_and_resumes_when_a_seat_frees(tmp_path: Path) -> None:
    lab = Lab(tmp_path, LIMIT_2)
    for host in ("lab1-01", "lab1-02", "lab1-03"):
        lab.start(host)
    assert lab.locked() == ["lab1-03"]
    status = lab.agents["lab1-03"].snapshot()
    assert (
        status.locked_reason
        == "student may use at most 2 machines until 22:00 (default limits, 00:00-22:00); in use by lab1-01, lab1-02"
    )
    lab.enforcers["lab1-01"].close()  # lab1-01 quits and gives its seat back
    del lab.agents["lab1-01"], lab.enforcers["lab1-01"]
    lab.tick(1.5)
    assert lab.locked() == []
    assert lab.enforcers["lab1-03"].seats.held == 1


def test_after_22_there_is_no_limit_and_at_midnight_the_last_to_arrive_give_up(tmp_path: Path) -> None:
    lab = Lab(tmp_path, LIMIT_2)
    lab.wall = at(22, 30)
    for host in ("lab1-01", "lab1-02", "lab1-03", "lab1-04"):
        lab.start(host)
    assert lab.locked() == []
    assert [lab.enforcers[h].seats.held for h in ("lab1-01", "lab1-02", "lab1-03", "lab1-04")] == [1, 2, 3, 4]
    lab.wall = datetime(2026, 11, 21, 0, 1)
    lab.tick(1.5)
    assert lab.locked() == ["lab1-03", "lab1-04"]
    assert "at most 2 machines" in lab.agents["lab1-04"].snapshot().locked_reason


def test_a_dead_agents_seat_is_freed_only_after_dead_after_without_a_heartbeat(tmp_path: Path) -> None:
    lab = Lab(tmp_path, 'limits:\n  - {hours: "00:00-24:00", machines: 1}\ncheck_every: 1\n')
    lab.start("lab1-01")
    lab.start("lab1-02")
    assert lab.locked() == ["lab1-02"]
    for _ in range(6):  # lab1-01 alive: its heartbeat counter keeps moving
        lab.tick(1.1)
        assert lab.locked() == ["lab1-02"]
    lab.tick(1.1, dead=("lab1-01",))  # lab1-01 stops (kill -9, power cut)
    # Its last beat is dated at the look before the one that saw it (liveness.py): 2.2 s of
    # silence now, less than dead_after (3 s): still its seat.
    assert lab.locked() == ["lab1-02"]
    lab.tick(1.1, dead=("lab1-01",))
    lab.tick(1.1, dead=("lab1-01",))
    assert lab.enforcers["lab1-02"].seats.held == 1
    assert "lab1-02" not in lab.locked()


def test_a_restarted_host_frees_the_seat_of_its_earlier_run_at_once(tmp_path: Path) -> None:
    lab = Lab(tmp_path, 'limits:\n  - {hours: "00:00-24:00", machines: 1}\n')
    lab.start("lab1-01")  # then killed with -9: the seat stays
    lab.agents.clear()
    lab.enforcers.clear()
    again = lab.start("lab1-01")  # same host, new nonce
    assert again.seats.held == 1 and lab.locked() == []


def test_an_unmounted_share_gets_no_seats_folder_and_the_agent_waits_locked(tmp_path: Path) -> None:
    lab = Lab(tmp_path, LIMIT_2)
    lab.layout.sentinel.unlink()  # the drive is not mounted: its mount point says nothing
    enforcer = lab.start("lab1-01")
    status = lab.agents["lab1-01"].status
    assert status.state == "locked" and status.locked_reason.endswith("(the share is not mounted)")
    assert not (lab.layout.root / "seats").exists()
    init_share(lab.layout.root, "student", fs=REAL_FS)  # mounted again
    lab.tick(30)
    assert status.state == "idle" and enforcer.seats.held == 1


def test_locked_agent_holds_its_render_workers_and_refuses_nv_functions(tmp_path: Path) -> None:
    lab = Lab(tmp_path, 'limits:\n  - {hours: "00:00-24:00", machines: 0}\n')
    enforcer = lab.start("lab1-01")
    agent = lab.agents["lab1-01"]
    agent.render_loop()  # made as render() makes it: the policy's hold applies at once
    agent.check_policy()
    assert agent.render.hold_reason == "student may use no machines (default limits, 00:00-24:00)"
    assert agent.render.next_claim() is None
    nv, builtin = stamp("*", "NV.bake('hero')"), stamp("*", "print('hi')")
    assert not enforcer.allows(nv) and agent.ledger.has_run(nv.id)  # refused for good, never run later
    assert enforcer.allows(builtin)
    lab.policy.write_text('limits:\n  - {hours: "00:00-24:00", machines: 3}\nsomething: new\n')  # a broken edit
    lab.tick(30)
    assert lab.locked() == ["lab1-01"]  # the last good policy stays
    lab.policy.write_text('limits:\n  - {hours: "00:00-24:00", machines: 3}\n')
    lab.tick(30)
    assert lab.locked() == [] and agent.render.hold_reason == "" and enforcer.allows(nv)


def test_blacklisted_user_is_refused_and_a_broken_policy_locks_until_fixed(tmp_path: Path) -> None:
    lab = Lab(tmp_path, TODAY, user="mallory")
    with pytest.raises(PolicyRefusal, match="user mallory may not use the render farm"):
        lab.start("lab1-01")
    lab = Lab(tmp_path, "limits: [oops\n")
    lab.start("lab1-01")
    assert lab.locked() == ["lab1-01"]
    assert "no usable lockdown policy" in lab.agents["lab1-01"].snapshot().locked_reason
    lab.policy.write_text(TODAY)
    lab.tick(30)
    assert lab.locked() == []


def test_envy_io_policy_report_says_what_applies_and_why(tmp_path: Path) -> None:
    lab = Lab(tmp_path, TODAY)
    lab.start("lab1-01")
    berlin = zone_named("Europe/Berlin")  # stands for this machine's own zone: TODAY names none
    text = describe_policy(lab.policy, "student", now=at(14, 3), layout=lab.layout, fs=REAL_FS, zone=lambda: berlin)
    assert text.splitlines() == [
        f"policy file: {lab.policy}",
        "time zone: Europe/Berlin (this machine's own: the policy names no timezone, so machines set to other "
        "zones judge its hours differently)",
        "student: not blacklisted",
        "now (Fri 14:03 Europe/Berlin): at most 5 machines (default limits, 00:00-22:00)",
        "from 22:00: no limit (default limits: no window covers 22:00)",
        "seats in use: 1 (1:lab1-01); your other agents are locked until a seat is free",
    ]
    assert "blacklisted" in describe_policy(lab.policy, "Mallory", fs=REAL_FS)
    assert "no lockdown policy" in describe_policy(None, "student", fs=REAL_FS)
    with pytest.raises(PolicyError, match="policy file not found"):
        describe_policy(tmp_path / "missing.yaml", "student", fs=REAL_FS)
