"""The agent: polls the instruction file, runs what is addressed to it, and heartbeats.

Threads: the polling loop (the caller's thread), the heartbeat, the command
runner for NV functions, the render workers, and the NIMBY watcher (someone
at the machine, envy/nimby/). ``request_stop`` (a session ending: sign-out,
SIGTERM...) arrives from the session-end relay thread and only sets events. Every loop sleeps on an
Event, so ``quit()`` takes effect within one wait, not one minute.

The agent is built in one place, envy/agent/build.py: every collaborator
(config source, ledger, instruction checks, policy gate, render loop factory,
clocks) comes in through the constructor and nothing outside replaces its
members afterwards.

Ownership: the polling thread owns everything here except ``status``,
``_share_ok`` and ``render``, which it writes and the heartbeat reads:
``status`` changes only under ``_lock`` (set_message, set_state) and is
copied under it (snapshot); ``_share_ok`` is one bool; ``render`` is set once.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from envy import __version__
from envy.agent.commands import BUILTIN_HANDLERS, CommandRunner, parse_agent_command
from envy.agent.context import AgentContext
from envy.agent.heartbeat import Heartbeat
from envy.agent.ledger import CommandLedger
from envy.agent.processes import ProcessHandler
from envy.agent.user_modules import NV_FILE, UserModule, load_user_module
from envy.agent.wakeup import EarlyWakeup
from envy.app.protocol import NEWEST_PROTOCOL, OLDEST_PROTOCOL
from envy.app.version_watch import VersionWatch
from envy.config import Config, ConfigError
from envy.config_source import ConfigSource
from envy.local_state import share_id
from envy.loop_guard import LoopGuard
from envy.nimby.control import ProcessTreeControl
from envy.nimby.decide import PAUSE
from envy.nimby.settings import nimby_settings
from envy.nimby.watcher import NimbyWatcher
from envy.platform.host import ip_address, os_name
from envy.platform.idle import MachineUseReader
from envy.protocol.commands import CommandError
from envy.protocol.instructions import Instruction, parse_instruction_file
from envy.protocol.selectors import HostNamePattern, SelectorError, parse_selector
from envy.protocol.status import AgentStatus
from envy.protocol.status_seal import StatusSeal
from envy.render.render_loop import RenderLoop, remembered_targets
from envy.security import InstructionCheck, strict_mode_problem
from envy.seen import BoundedSeen
from envy.share.bounded import FileTrust, ShareFileError, read_fresh_share_file
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.share.share_clock import ShareClock

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_RESTART = 75  # the entry point re-executes the agent with fresh code and config
# The least pause between two polls, as a part of the interval: a share so slow that a poll
# outlasts the interval is not polled back to back.
MIN_PAUSE_PART = 0.25


class OnceLog:
    """Logs each distinct warning once: a bad share file is seen at every poll, the log must not fill up.

    Used from the polling thread, the render threads and the signed-mode
    check: the set of messages said is guarded by a lock.
    """

    def __init__(self, limit: int = 1000) -> None:
        # Bounded: a share writer can invent new bad lines without end (Must-hold 8).
        self._said = BoundedSeen(limit)
        self._lock = threading.Lock()

    def report(self, message: str) -> None:
        with self._lock:
            if not self._said.add(message):
                return
        log.warning("%s", message)


class PolicyGate(Protocol):
    """The lockdown policy as the agent uses it (envy/policy/enforce.py: PolicyEnforcer)."""

    def __call__(self) -> str:
        """The reason to stand down now ('' to work); cheap between its periodic checks."""
        ...

    def close(self) -> None:
        """The agent is quitting: give the seat back."""
        ...

    def read_again(self) -> None:
        """``reload()``: read the policy file again at the next call, edited or not."""
        ...


RenderLoopFactory = Callable[["Agent"], RenderLoop]


class Agent:
    def __init__(
        self,
        config: ConfigSource,
        layout: ShareLayout,
        host: str,
        user: str,
        state_dir: Path,
        log_dir: Path,
        *,
        fs: ShareFS,
        nonce: str,
        share_clock: ShareClock,
        ledger: CommandLedger,
        processes: ProcessHandler,
        make_render_loop: RenderLoopFactory,
        verify: InstructionCheck | None = None,
        authentic: InstructionCheck | None = None,
        trust: FileTrust | None = None,
        status_seal: StatusSeal | None = None,
        version_watch: VersionWatch | None = None,
        policy: PolicyGate | None = None,
        render_at_start: bool = False,
        reports: OnceLog | None = None,
        machine_use: MachineUseReader | None = None,
    ) -> None:
        self.settings = config
        self.layout = layout
        self.host = host
        self.user = user
        self.fs = fs
        # Command ages are judged on the file server's clock (see share_clock.py):
        # ``clock()`` is our clock corrected by the offset the heartbeat learns.
        self.share_clock = share_clock
        self.clock = share_clock.now
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.nonce = nonce
        self.ledger = ledger
        self.processes = processes
        self.verify = verify  # every instruction check (signed mode, the policy), already combined
        # Signed mode: is the line signed with our key? Asked before the selector is parsed or matched.
        self.authentic = authentic
        self.trust = trust  # signed mode: Envy_Functions.py on the share must be signed with the farm key
        self.policy = policy
        self.version_watch = version_watch  # run from the share copy: move to a newly published version
        self.render_at_start = render_at_start  # `envy agent --render`: join the render queue at once
        self._make_render_loop = make_render_loop
        self.context = AgentContext(host, user, ip_address(), config, layout, self.processes, log_dir)
        self.nv_module: UserModule = UserModule(layout.user_dir(user) / NV_FILE)
        self.status = AgentStatus(
            host=host, nonce=self.nonce, ip=self.context.ip, user=user, pid=os.getpid(), version=__version__,
            os=os_name(), heartbeat=self.config.heartbeat, poll_interval=self.config.poll_interval,
            started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), protocols=[OLDEST_PROTOCOL, NEWEST_PROTOCOL],
        )
        self._lock = threading.Lock()
        self._quit = threading.Event()
        self._wake = threading.Event()
        self._restart = False
        self._last_digest: str | None = None  # of the instruction file's bytes at the last poll that acted
        self._reports = reports if reports is not None else OnceLog()  # shared with the signed-mode check
        self._share_ok = False
        self._share_error_logged = False
        self._backoff = 0.0
        self._loop_guard = LoopGuard("the polling loop", log)  # owned by the polling thread
        self._line_guard = LoopGuard("an instruction line", log)  # its log-once only: the next line goes on
        self._pattern: HostNamePattern | None = None
        self._stop_reason = ""  # why the session ended (request_stop), for the last status
        self.heartbeat = Heartbeat(layout, fs, lambda: self.config.heartbeat, self.snapshot, lambda: self._share_ok,
                                   share_clock, status_seal.seal if status_seal is not None else None)
        self.commands = CommandRunner(self)
        self.render: RenderLoop | None = None  # made on the first render() (or render_loop())
        self.wakeup = EarlyWakeup(layout.root, self._wake)
        # NIMBY: someone at the machine pauses, stops or lowers the renders (envy/nimby/).
        self._nimby_reason = ""  # written by the NIMBY thread only
        self.nimby: NimbyWatcher | None = None
        if machine_use is not None:
            control = ProcessTreeControl(self.processes.children, self._nimby_hold, lambda: self._nimby_hold(""),
                                         self._nimby_give_back)
            self.nimby = NimbyWatcher(lambda: nimby_settings(self.config), machine_use, control,
                                      lambda: self.config.poll_interval)

    @property
    def config(self) -> Config:
        """The configuration now: read at each use, so every part follows a reload()."""
        return self.settings.current

    # -- state shared with other threads -------------------------------------------------
    def snapshot(self) -> AgentStatus:
        with self._lock:
            status = AgentStatus(**{**self.status.__dict__})
        config = self.config
        status.heartbeat, status.poll_interval = config.heartbeat, config.poll_interval  # after a reload() too
        render = self.render
        if render is not None:
            status.workers = render.worker_statuses()
            status.render_jobs = render.job_names()
            status.done_frames = render.done_count
            status.recent = render.recent_done()
            if render.active and status.state in ("idle", "rendering"):
                status.state = "rendering"
            status.work = render.describe()
        nimby = self.nimby.decision if self.nimby is not None else None  # one immutable value
        if nimby is not None and nimby.status_text and status.state in ("idle", "rendering"):
            status.state = "paused" if nimby.action == PAUSE else status.state
            status.work = nimby.status_text  # "paused: someone is using this machine"
        if not self._share_ok:
            status.state = "waiting-for-share"
        return status

    def set_message(self, message: str) -> None:
        with self._lock:
            self.status.message = message[:500]

    def set_state(self, state: str, reason: str = "") -> None:
        with self._lock:
            self.status.state = state
            self.status.locked_reason = reason

    @property
    def share_ok(self) -> bool:
        """The share was reachable (sentinel there, last poll worked)."""
        return self._share_ok

    @property
    def quitting(self) -> threading.Event:
        return self._quit

    # -- built-ins ---------------------------------------------------------------------
    def stop_work(self) -> None:
        log.info("stop: stopping all work")
        if self.render is not None:
            self.render.stop()
        self.processes.stop_all("stopped by stop()")

    def request_quit(self, restart: bool) -> None:
        log.info("%s requested", "restart" if restart else "quit")
        self._restart = restart
        self._quit.set()
        self._wake.set()

    def request_stop(self, reason: str) -> None:
        """The session is ending (sign-out, shut-down, SIGTERM...): stop now, frames given back.

        Called from the session-end relay thread (envy/platform/session_end.py);
        the polling thread does the stopping. A second request is only logged.
        """
        if self._quit.is_set():
            log.info("stop requested again (%s); already stopping", reason)
            return
        log.warning("stopping: %s", reason)
        self._stop_reason = reason
        self._restart = False
        self._quit.set()
        self._wake.set()

    def reload(self) -> None:
        if self.policy is not None:
            self.policy.read_again()  # e.g. the admin just signed it: only its signature changed
        if self.settings.can_reload:
            try:
                self.settings.reload()  # one swap: every part reads the new config at its next use
                log.info("reload: configuration reloaded")
            except ConfigError as exc:
                log.error("reload: %s (keeping the previous configuration)", exc)
            except OSError as exc:  # the share failing under the config file: keep going (issue 14)
                log.error("reload: cannot read the configuration (%s); keeping the previous one", exc)
        path = self.layout.user_dir(self.user) / NV_FILE
        problem = (
            strict_mode_problem(path, "user module", fs=self.fs, share_root=self.layout.root)
            if self.config.strict_modes
            else None
        )
        if problem:
            log.error("%s", problem)
            self.nv_module = UserModule(path, error=problem)
            return
        self.nv_module = load_user_module(path, "nv", self.fs, self.trust)
        names = ", ".join(self.nv_module.names()) or "none"
        log.info("reload: user functions loaded from %s: %s", self.nv_module.path, names)

    def render_loop(self) -> RenderLoop:
        """The render loop, made on first use (not started)."""
        if self.render is None:
            render = self._make_render_loop(self)
            render.hold(self._nimby_reason, "nimby")  # someone at the machine already: no first frame
            self.render = render
            self.check_policy()  # a locked agent's new workers must not take a first frame
        return self.render

    # -- NIMBY (called from the NIMBY thread) -------------------------------------------
    def _nimby_hold(self, reason: str) -> None:
        self._nimby_reason = reason
        render = self.render
        if render is not None:
            render.hold(reason, "nimby")

    def _nimby_give_back(self, reason: str) -> None:
        render = self.render
        if render is not None:
            render.give_back(reason)

    def start_render(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        self.render_loop().start(args, kwargs)

    def check_policy(self) -> None:
        """Ask the policy gate, and apply its answer here: the status, and the render workers' hold.

        A farm config refused in signed mode holds renders too: the policy it named is unknown.
        """
        refused = self.config.refused
        if self.policy is None and not refused and self.status.state != "locked":
            return
        reason = f"{refused} (renders wait until the admin signs it)" if refused else ""
        if self.policy is not None:
            reason = self.policy() or reason
        if self._quit.is_set():
            return
        with self._lock:
            if reason and (self.status.state != "locked" or self.status.locked_reason != reason):
                self.status.state, self.status.locked_reason = "locked", reason
            elif not reason and self.status.state == "locked":
                self.status.state, self.status.locked_reason = "idle", ""
        if self.render is not None:
            self.render.hold(reason)

    def check_version(self) -> None:
        """A newer version published on the share: no new frame, and restart once none is in hand."""
        newer = self.version_watch.newer() if self.version_watch is not None else None
        if newer is None or self._quit.is_set():
            return
        render = self.render
        if render is not None:
            reason = f"moving to envy {newer} once the frame in hand is done"
            if self.version_watch is not None and self.version_watch.announce():
                log.info("version %s is published on the share: %s", newer, reason)
            render.hold(reason, "upgrade")
            if render.frames_in_hand():
                return
        log.info("version %s is published on the share: restarting into it", newer)
        self.request_quit(restart=True)

    # -- the polling loop --------------------------------------------------------------
    def run(self) -> int:
        log.info("agent %s starting (pid %d, share %s, nonce %s)", self.host, os.getpid(), self.layout.root, self.nonce)
        killed = self.processes.kill_orphans()
        if killed:
            log.warning("killed %d child process(es) left by a previous agent: %s", len(killed), killed)
        self._wait_for_share()
        if self._quit.is_set():
            return self._shutdown()
        self.reload()
        self.set_state("idle")
        self.check_policy()  # the first status already says "locked" when it is
        self.heartbeat.beat()  # announce ourselves at once, then at the heartbeat rate
        self.heartbeat.start()
        self.commands.start()
        self.wakeup.start()
        if self.nimby is not None:
            self.nimby.start()
        self._resume_render()
        while not self._quit.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
                self.check_policy()
                self.check_version()
                self._loop_guard.ok()
                pause = self._pause_after_poll(started)
            except Exception as exc:  # MemoryError included: the agent never dies of one round
                pause = self._loop_guard.failed(exc)
            self._wake.wait(pause)
            self._wake.clear()
        return self._shutdown()

    def _resume_render(self) -> None:
        targets = remembered_targets(self.state_dir, share_id(self.layout, self.fs))
        if targets is None and self.render_at_start:
            targets = []
        if targets is not None:
            log.info("resuming render mode from before the restart (%s)", ", ".join(targets) or "all active jobs")
            self.start_render(tuple(targets), {})

    def _pause_after_poll(self, started: float) -> float:
        """Start to start: a poll slowed by the share or the CPU does not push the next one back
        (a command would wait poll_interval plus the slow poll). Never back to back, though."""
        wait = self._next_wait()
        return max(wait * MIN_PAUSE_PART, wait - (time.monotonic() - started))

    def _next_wait(self) -> float:
        base = self.config.poll_interval + self._backoff
        # One-sided: sooner at random, never later, so poll_interval bounds how long a command waits
        # (issue 14: submit to first start within poll interval + 1 s).
        return base * (1 - self.config.poll_jitter * random.random())

    def _wait_for_share(self) -> None:
        warned = False
        while not self._quit.is_set():
            try:
                mounted = self.layout.is_mounted(self.fs)
                pause = self.config.poll_interval
            except Exception as exc:  # MemoryError included: waiting for the share is a loop too
                mounted, pause = False, max(self.config.poll_interval, self._loop_guard.failed(exc))
            if mounted:
                self._share_ok = True
                if warned:
                    log.info("share %s is back", self.layout.root)
                return
            if not warned:
                log.warning("share %s has no sentinel (not mounted?); waiting, creating nothing", self.layout.root)
                warned = True
            self._quit.wait(pause)

    def poll_once(self) -> None:
        """One poll: one fresh read of the instruction file; act only when its bytes changed.

        Not a ``stat``: network clients answer it from their attribute cache (sshfs
        for 20 s), so commands arrived 11 to 22 s late. The fresh read (open, the
        handle's attributes fetched from the server, read, close; envy/share/fresh.py)
        sees another machine's change at the next poll on every client measured
        (docs/share-layout.md).
        """
        try:
            # Bounded and regular (issue 9): a FIFO cannot block this thread, a 2 GB file costs 4 MiB.
            fresh = read_fresh_share_file(self.fs, self.layout.instructions, "instructions", self._last_digest)
        except ShareFileError as exc:
            self._share_recovered()
            self.report_once(f"instruction file skipped: {exc}")
            return
        except FileNotFoundError:
            # Missing may be a cached negative look-up or an unmounted share: never "stop".
            self._check_share()
            return
        except OSError as exc:
            self._share_failed(exc)
            return
        self._share_recovered()
        if fresh is None:
            return
        if self.config.strict_modes:
            problem = strict_mode_problem(self.layout.instructions, "instruction file", fs=self.fs, st=fresh.stat,
                                          share_root=self.layout.root)
            if problem:
                self.report_once(problem)
                return  # checked again at each poll (the mode comes with the read): a chmod fixes it
        self._last_digest = fresh.digest
        self.handle_instructions(fresh.data)

    def _check_share(self) -> None:
        mounted = self.layout.is_mounted(self.fs)
        if not mounted and self._share_ok:
            log.warning("share %s lost its sentinel (unmounted?); pausing until it is back", self.layout.root)
        elif mounted and not self._share_ok:
            log.info("share %s is back", self.layout.root)
        self._share_ok = mounted

    def _share_failed(self, exc: OSError) -> None:
        if not self._share_error_logged:
            log.warning("share error: %s; retrying with backoff", exc)
            self._share_error_logged = True
        # The heartbeat does not wait for this backoff: it checks the sentinel on its own.
        self._backoff = min(max(self._backoff * 2, 1.0), 30.0)
        self._share_ok = self.layout.is_mounted(self.fs)  # is_mounted never raises

    def _share_recovered(self) -> None:
        if self._share_error_logged or not self._share_ok:
            log.info("share %s reachable again", self.layout.root)
        self._share_error_logged = False
        self._backoff = 0.0
        self._share_ok = True

    def handle_instructions(self, data: bytes) -> None:
        parsed = parse_instruction_file(data)
        for bad in parsed.bad:
            self.report_once(bad.describe())
        for ins in parsed.instructions:
            try:
                self.consider(ins)
            except Exception as exc:  # one line that breaks something must not hide the lines after it
                self._line_guard.failed(exc)

    def report_once(self, message: str) -> None:
        self._reports.report(message)

    def consider(self, ins: Instruction) -> None:
        """Run ``ins`` if it is for us, young enough, and not yet run by this agent."""
        if self.ledger.has_run(ins.id):
            return
        if self.authentic is not None and not self.authentic(ins) and not self._addressed_by_name(ins):
            return  # not signed with our key: its selector is never parsed nor matched
        try:
            selector = parse_selector(ins.selector, self.config.groups, self._host_pattern())
        except SelectorError as exc:
            self.report_once(f"instruction line {ins.line_no} skipped (bad selector: {exc})")
            return
        if not selector.matches(self.host):
            return
        # Before the age check, so that signed mode can log the expired lines addressed to us.
        if self.verify is not None and not self.verify(ins):
            return
        now = self.clock()
        if now - ins.issued > self.config.command_lifetime:
            return  # an old one-shot command: a new agent must not replay it
        try:
            call = parse_agent_command(ins.command)
        except CommandError as exc:
            self.report_once(f"instruction line {ins.line_no} skipped: {exc}")
            return
        self.ledger.record(ins.id, ins.issued, now)
        log.info("command %s: %s", ins.id, ins.text)
        if call.namespace == "NV":
            self.commands.calls.put(call)
            return
        try:
            BUILTIN_HANDLERS[call.name](self, call)
        except Exception:
            log.exception("built-in %s failed", call.qualname)

    def _addressed_by_name(self, ins: Instruction) -> bool:
        """A cheap, regex-free look: does an unsigned line name us (``*``, our host, our lab)?

        Only so that signed mode still logs why it refuses the lines meant for
        this host; ``re:`` and ``@group`` selectors of unsigned lines are never evaluated.
        """
        words = ins.selector.lower().split()
        split = self._host_pattern().split(self.host)
        if words == ["*"] or words == [self.host.lower()]:
            return True
        return len(words) == 2 and split is not None and words[0] == split[0]

    def _host_pattern(self) -> HostNamePattern:
        if self._pattern is None or self._pattern.regex != self.config.host_pattern:
            self._pattern = HostNamePattern(self.config.host_pattern)
        return self._pattern

    def _shutdown(self) -> int:
        log.info("agent %s stopping", self.host)
        self.set_state("stopping")
        if self.nimby is not None:
            self.nimby.stop()  # first: it resumes paused renders, so that they stop at once
        self.wakeup.stop()
        if self.render is not None:
            self.render.close()
        self.processes.stop_all("agent quit")
        self.processes.close()
        if self.policy is not None:
            try:
                self.policy.close()  # give the seat back once work has stopped
            except Exception:
                log.exception("giving back the policy seat failed")
        self.commands.stop()
        self.heartbeat.stop()
        if self.heartbeat.is_alive():
            self.heartbeat.join(timeout=5)
        reason = self._stop_reason or ("restart()" if self._restart else "quit()")
        self.set_state("stopped")
        self.set_message(f"stopped: {reason}")
        self.heartbeat.beat()  # a last status saying "stopped" and why
        log.info("agent %s stopped (%s)", self.host, reason)
        return EXIT_RESTART if self._restart else EXIT_OK
