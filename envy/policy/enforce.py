"""The lockdown policy on the agent: refuse to start, or stand down and resume by itself.

The agent's builder (envy/agent/build.py) makes a ``PolicyEnforcer`` and
calls ``start()`` once: it reads the policy, refuses a blacklisted user
(``PolicyRefusal``: one line, non-zero exit) and claims a seat (seats.py).
The agent is then built with the enforcer as its policy gate; it calls the
enforcer after every poll, which re-checks every ``check_every`` seconds
(policy file, default 20 s) and answers with the reason to stand down ('' to
work). The agent applies that answer itself (its status, its render loop's
hold): the enforcer touches no other object.

* the policy file is stat'ed each check and read only when it changed; an
  edit that does not validate is logged and the last good policy kept; with
  no good policy at all the agent stays locked (fail closed) until it is fixed;
* the limit is the one for now in the policy's ``timezone`` (this machine's
  clock, the policy's zone; a policy without one is judged in this machine's
  system zone, read from the OS at each check and never from ``TZ``, and the
  agent warns once that a policy should name its zone);
* an agent holding a seat within the limit works; one whose seat is above a
  lower limit gives it up; one without a seat tries to claim one, freeing
  the seats of agents that are gone, and otherwise is *locked*: its render
  workers finish the frame in hand and take no new one, NV functions are
  refused, and the status shows state ``locked`` with the reason.

Between checks the gate only returns the last decision (no file access), so
it is cheap enough to call after every poll.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from envy.config import Config
from envy.loop_guard import LoopGuard
from envy.platform.files import others_can_write
from envy.platform.time_zone import Zone, machine_zone
from envy.policy.rules import DEFAULT_CHECK_EVERY_S, Limit, Policy, PolicyError, load_policy, utc_now, wall_clock
from envy.policy.seats import SeatOwner, Seats
from envy.protocol.commands import CommandError, parse_agent_command
from envy.share.bounded import FileTrust
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout, ShareMissing

if TYPE_CHECKING:
    from envy.protocol.instructions import Instruction

log = logging.getLogger(__name__)

Now = Callable[[], datetime]


class PolicyRefusal(Exception):
    """This user may not run an agent at all: printed as one line, the agent exits non-zero."""


class CommandRecord(Protocol):
    """Where a refused command is recorded as run (envy/agent/ledger.py: CommandLedger)."""

    def record(self, command_id: str, issued: float, now: float) -> None: ...


class PolicyEnforcer:
    """The agent's policy gate: call it after every poll; it does real work every ``check_every`` s.

    Ownership: the decision (``reason``), the policy and the seat are written
    under ``_lock`` by the thread that calls the gate (the polling thread).
    """

    def __init__(self, path: Path, *, user: str, host: str, nonce: str, layout: ShareLayout, fs: ShareFS,
                 config: Callable[[], Config], ledger: CommandRecord, command_clock: Callable[[], float],
                 now: Now = utc_now, clock: Callable[[], float] = time.monotonic,
                 zone: Callable[[], Zone] = machine_zone, trust: FileTrust | None = None) -> None:
        self.path = path
        self.trust = trust  # signed mode: the policy must be local or signed with the farm key
        self.user = user
        self.layout = layout
        self.fs = fs
        self.config = config  # the agent's current config, read at each check
        self.ledger = ledger
        self.command_clock = command_clock  # the agent's clock for command ages (the share's time)
        self.now = now  # an aware instant (naive: the policy zone's wall clock already, for tests)
        self.clock = clock
        self.machine_zone = zone  # used only when the policy names no timezone
        me = SeatOwner(host.lower(), os.getpid(), nonce)
        self.seats = Seats(layout, user, me, fs, config().dead_after, clock)
        self.policy: Policy | None = None
        self.limit: Limit | None = None
        self.reason = ""  # non-empty: this agent is locked, and why
        self._decided = False  # the first decision is logged whatever it is
        self._problem = f"{path}: policy file not read yet"  # why there is no usable policy
        self._file_key: tuple[int, int, int] | None = None
        self._next_check = 0.0
        self._said: set[str] = set()
        self._lock = threading.Lock()
        self._guard = LoopGuard("the lockdown policy check", log)  # used under _lock

    # -- the gate -----------------------------------------------------------------------
    def __call__(self) -> str:
        """The reason this agent must stand down now, or '' when it may work."""
        with self._lock:
            if self.clock() >= self._next_check:
                try:
                    self.check()
                    self._guard.ok()
                except Exception as exc:  # a bug, MemoryError: must not stop the agent's polling loop
                    # The current state is kept; logged once per kind, tried again later.
                    self._next_check = self.clock() + max(DEFAULT_CHECK_EVERY_S, self._guard.failed(exc))
            return self.reason

    def read_again(self) -> None:
        """Read the policy file at the next call, edited or not (the agent's ``reload()``)."""
        with self._lock:
            self._file_key = None
            self._next_check = 0.0

    def start(self) -> None:
        """The check at start: refuse a blacklisted user before claiming anything."""
        with self._lock:
            self._reload()
            if self.policy is not None and self.policy.is_blacklisted(self.user):
                raise PolicyRefusal(
                    f"user {self.user} may not use the render farm (blacklisted in {self.path}); ask the lab's admin"
                )
            self.check()

    def check(self) -> None:
        configured = self.config().policy  # reload() may have pointed the agent elsewhere
        if configured and Path(configured) != self.path:
            log.info("lockdown policy file is now %s (was %s)", configured, self.path)
            self.path, self._file_key = Path(configured), None
        self._reload()
        policy = self.policy
        every = policy.check_every if policy else DEFAULT_CHECK_EVERY_S
        self._next_check = self.clock() + every * random.uniform(0.9, 1.1)  # spread agents started together
        if policy is None:
            self._release_quietly()
            self._set_reason(f"no usable lockdown policy ({self._problem})")
            return
        user = self.user
        if policy.is_blacklisted(user):
            self._release_quietly()
            self._set_reason(f"user {user} is blacklisted in {self.path}")
            return
        zone = policy.zone(self.machine_zone)
        if policy.timezone is None:
            self._say(f"{self.path} names no timezone: judging its hours in this machine's zone, "
                      f"{zone.name}; a policy should name one (timezone: Europe/Berlin)")
        self.limit = policy.limit_for(user, wall_clock(self.now(), zone))
        try:
            self._set_reason(self._settle_seat(self.limit))
        except (OSError, ShareMissing) as exc:
            problem = "the share is not mounted" if isinstance(exc, ShareMissing) else str(exc)
            if self.seats.held is not None:
                self._say(f"cannot check seat {self.seats.held} in {self.seats.folder} ({problem}); keeping it")
            else:
                self._set_reason(f"cannot claim a seat in {self.seats.folder} ({problem})")

    def close(self) -> None:
        """On quit: give the seat back so another agent of the user can start at once."""
        with self._lock:
            self._release_quietly()

    # -- instructions while locked --------------------------------------------------------
    def allows(self, ins: Instruction) -> bool:
        """NV functions are work: a locked agent refuses them for good (built-ins still run)."""
        reason = self.reason
        if not reason:
            return True
        try:
            call = parse_agent_command(ins.command)
        except CommandError:
            return True  # the agent reports the bad line itself
        if call.namespace != "NV":
            return True
        self.ledger.record(ins.id, ins.issued, self.command_clock())  # never run it later by surprise
        log.warning("command %s (%s) not run: this agent is locked: %s", ins.id, call.qualname, reason)
        return False

    # -- internals ---------------------------------------------------------------------
    def _reload(self) -> None:
        """Stat the policy file; read and validate it only when it changed."""
        fs = self.fs
        try:
            st = fs.stat(self.path)
        except OSError as exc:
            # Missing may be a cached negative look-up or a share hiccup (§1.7): keep what we have.
            what = "not found" if isinstance(exc, FileNotFoundError) else f"cannot read it ({exc.strerror or exc})"
            self._problem = f"{self.path}: policy file {what}"
            self._say(self._problem + ("; keeping the last good policy" if self.policy else ""))
            return
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key == self._file_key:
            return
        try:
            policy = load_policy(self.path, fs, self.trust)
        except PolicyError as exc:
            self._problem = str(exc)
            if self.policy is not None:
                self._say(f"{exc}; keeping the last good policy", error=True)
            else:
                self._say(str(exc), error=True)
            # Read it again only once it is edited; in signed mode also at each check, since
            # signing it (envy-io sign) changes only the signature beside it.
            self._file_key = key if self.trust is None else None
            return
        self._file_key = key
        if policy != self.policy:
            log.info("lockdown policy %s loaded", self.path)
        self.policy = policy
        if others_can_write(st):
            self._say(
                f"{self.path}: other users can write the policy file; ask the admin to make it read-only for them"
            )

    def _settle_seat(self, limit: Limit) -> str:
        """Keep, give up or claim a seat for ``limit``; the reason to stand down, or '' to work."""
        seats, user = self.seats, self.user
        machines = limit.machines
        self.layout.require(self.fs)  # an empty mount point says nothing about seats (§1.8)
        if seats.held is not None and not seats.still_mine():
            log.warning(
                "seat %d was taken over by another agent (this one was silent longer than dead_after)", seats.held
            )
            seats.held = None
        if seats.held is not None and machines is not None and seats.held > machines:
            log.info("giving up seat %d: the limit is now %s", seats.held, limit.describe())
            seats.release()
        if seats.held is not None:
            return ""
        if machines == 0:
            return f"{user} may use {limit.describe()}"
        seats.ensure_folder()
        listed = seats.scan()
        if seats.adopt(listed, machines) is not None:
            return ""
        if seats.free_gone(listed, only_mine=True):  # this host's earlier runs (kill -9, reboot)
            listed = seats.scan()
        if seats.claim(machines, listed) is not None:
            return ""
        if seats.free_gone(listed) and seats.claim(machines, seats.scan()) is not None:
            return ""
        holders = sorted({s.owner.host for s in listed if s.owner and (machines is None or s.number <= machines)})
        return f"{user} may use {limit.describe()}; in use by {', '.join(holders) or 'agents starting up'}"

    def _set_reason(self, reason: str) -> None:
        if reason == self.reason and self._decided:
            return
        self._decided = True
        if reason:
            log.warning("locked by the lab policy: %s (finishing the frame in hand, taking no new work)", reason)
        else:
            limit = self.limit.describe() if self.limit else ""
            log.info("%s: seat %s; %s may use %s", "unlocked" if self.reason else "lockdown policy",
                     self.seats.held, self.user, limit)
        self.reason = reason

    def _release_quietly(self) -> None:
        try:
            self.seats.release()
        except OSError as exc:
            log.warning(
                "could not give up seat in %s: %s (it is freed once this agent is seen gone)", self.seats.folder, exc
            )

    def _say(self, message: str, error: bool = False) -> None:
        """Log a problem once (a check runs every few seconds; the log must not fill up)."""
        if message not in self._said:
            self._said.add(message)
            (log.error if error else log.warning)("%s", message)
