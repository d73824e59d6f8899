"""One child process of the agent: its output, exit, limits and stopping.

Threads per child: one reads the output pipe, one waits for the exit and
writes the result. The handler's monitor thread calls ``_check`` for memory.
"""

from __future__ import annotations

import codecs
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from envy.agent.child_log import ChildLog
from envy.platform.processes import collect_tree, has_exited, is_alive, kill_procs, watched_tree

log = logging.getLogger(__name__)

_READ_SIZE = 64 * 1024
# After the child exits, how long its descendants may keep the output pipe
# open before they count as left behind and are killed.
_LEFTOVER_GRACE_S = 2.0
# How often the exit waiter looks for the child's exit; it must not reap the
# child (see Child._wait_for_exit), so it cannot block in wait().
_EXIT_POLL_S = 0.1
_KILL_TIMEOUT_S = 5.0
_MB = 1024 * 1024

OutputCallback = Callable[[str], object]  # what it returns is ignored


@dataclass(frozen=True)
class TimeLimits:
    """How long a child may run, and stay silent, before it is killed (seconds; 0: no limit)."""

    timeout_s: float = 0.0
    stall_s: float = 0.0


@dataclass(frozen=True)
class ChildResult:
    returncode: int | None
    killed_reason: str | None  # "stopped", "memory limit 512 MB exceeded (RSS 700 MB)", ...
    log_path: Path
    duration_s: float


class Child:
    """A started child process. Made by ``ProcessHandler.start``."""

    def __init__(
        self,
        name: str,
        popen: subprocess.Popen[bytes],
        proc: psutil.Process | None,
        create_time: float,
        child_log: ChildLog,
        started_monotonic: float,
        memory_limit_mb: int | None,
        on_output: OutputCallback | None,
        on_finished: Callable[[Child], None],
        limits: TimeLimits | None = None,
    ) -> None:
        self.name = name
        self.pid = popen.pid
        self.create_time = create_time
        self.log_path = child_log.path
        self.started_monotonic = started_monotonic
        self.memory_limit_mb = memory_limit_mb
        self.limits = limits or TimeLimits()
        # Written by the output reader (one float), read by the monitor: when output last came.
        self._last_output = started_monotonic
        # The monitor's own: time spent suspended (NIMBY pause) does not count against the limits.
        self._suspended_s = 0.0
        self._last_tick = started_monotonic
        self._popen = popen
        self._proc = proc
        self._log = child_log
        self._on_output = on_output
        self._on_finished = on_finished
        self._done = threading.Event()
        self._eof = threading.Event()
        self._wake = threading.Event()  # set after a kill: look for the exit now
        self._result: ChildResult | None = None
        self._killed_reason: str | None = None
        self._stop_lock = threading.Lock()
        self._stop_requested = False
        # Descendants seen by the monitor: on Windows a dead parent no longer
        # leads to its children, so we remember them.
        self._seen: dict[int, psutil.Process] = {}
        self._seen_lock = threading.Lock()
        self._output_failed = False  # written by the output reader only
        self._threads = [
            threading.Thread(target=self._read_output, name=f"envy-{name}-output", daemon=True),
            threading.Thread(target=self._wait_for_exit, name=f"envy-{name}-exit", daemon=True),
        ]

    def __repr__(self) -> str:
        return f"Child({self.name!r}, pid={self.pid}, running={self.running})"

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def poll(self) -> ChildResult | None:
        return self._result

    def wait(self, timeout: float | None = None) -> ChildResult | None:
        """The result once the child has finished, or None if ``timeout`` passed first."""
        self._done.wait(timeout)
        return self._result

    def stop(self, reason: str = "stopped") -> None:
        """Kill the child and all its descendants; ``reason`` goes into the result."""
        with self._stop_lock:
            self._stop_requested = True
            if self._done.is_set():
                return
            if self._killed_reason is None and self._root_running():
                self._killed_reason = reason
            killed = kill_procs(self._tree(), _KILL_TIMEOUT_S)
            log.info("%s (pid %s): %s; killed pids %s", self.name, self.pid, reason, killed)
            self._wake.set()
        # The tree is gone, so the pipe closes and the result follows at once.
        self._done.wait(_KILL_TIMEOUT_S)

    # -- threads ---------------------------------------------------------------

    def _begin(self) -> None:
        for thread in self._threads:
            thread.start()

    def _read_output(self) -> None:
        """Copy the pipe to the log and ``on_output`` in chunks as they arrive (not lines: ``\\r``)."""
        assert self._popen.stdout is not None
        fd = self._popen.stdout.fileno()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                try:
                    data = os.read(fd, _READ_SIZE)
                except OSError:
                    break
                if not data:
                    break
                if self._done.is_set():
                    continue  # gave up waiting for us; just drain
                self._last_output = time.monotonic()
                try:
                    self._log.write(data)
                    self._emit(decoder.decode(data))
                except Exception as exc:  # a full disk, MemoryError: go on draining, or the renderer blocks
                    if not self._output_failed:
                        log.warning("%s: its output could not be kept (%s: %s); still reading it",
                                    self.name, exc.__class__.__name__, exc)
                        self._output_failed = True
            self._emit(decoder.decode(b"", final=True))
        finally:
            self._popen.stdout.close()
            self._eof.set()

    def _emit(self, text: str) -> None:
        if not text or self._on_output is None:
            return
        try:
            self._on_output(text)
        except Exception:
            log.warning("on_output of %s failed; output callbacks disabled for it", self.name, exc_info=True)
            self._on_output = None

    def _wait_for_exit(self) -> None:
        """The reaper thread: ``_see_exit``, and a result whatever goes wrong in it, or the worker
        waiting for this child would wait for ever."""
        try:
            self._see_exit()
        except Exception:  # MemoryError included
            log.exception("%s (pid %s): watching its exit failed", self.name, self.pid)
            if self._result is None:
                try:
                    returncode = self._popen.wait()
                except Exception:
                    returncode = -1
                self._result = ChildResult(returncode, self._killed_reason or "Envy error while watching the renderer "
                                           "(see agent log)", self.log_path, time.monotonic() - self.started_monotonic)
        finally:
            if not self._done.is_set():
                self._done.set()
                self._on_finished(self)

    def _see_exit(self) -> None:
        """Wait for the child's exit, clean up what it left running, then reap it and finish.

        The child is reaped last: until then its pid (a POSIX zombie, or a
        Windows process whose handle we hold) cannot be given to another
        process, so its tree and process group are still unambiguously its own.
        """
        if hasattr(os, "waitid"):
            # POSIX: sleep until the child exits without reaping it (WNOWAIT), so
            # its pid and process group stay reserved until the tree is dealt
            # with; polling instead costs up to _EXIT_POLL_S per frame.
            try:
                os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                pass  # not our child any more: the loop below decides
        while self._root_running():  # Windows (no waitid), or waitid gave up
            self._wake.wait(_EXIT_POLL_S)
            self._wake.clear()
        duration = time.monotonic() - self.started_monotonic
        self._eof.wait(_LEFTOVER_GRACE_S)  # descendants may still be writing
        leftovers = [p for p in self._tree() if p.pid != self.pid]
        if leftovers:
            killed = kill_procs(leftovers, _KILL_TIMEOUT_S)
            log.warning("%s (pid %s) exited but left pids %s running; killed them", self.name, self.pid, killed)
            self._log.write_note(f"killed processes left running after exit: {killed}")
        if not self._eof.wait(_KILL_TIMEOUT_S):
            log.warning("%s: a process outside its tree holds its output open; not waiting for it", self.name)
        returncode = self._popen.wait()
        result = ChildResult(returncode, self._killed_reason, self.log_path, duration)
        footer = f"exit code {returncode} after {duration:.1f} s"
        if self._killed_reason:
            footer += f" (killed: {self._killed_reason})"
        self._log.write_note(footer)
        self._log.close()
        self._result = result
        self._done.set()
        self._on_finished(self)

    def _root_running(self) -> bool:
        return not has_exited(self._popen, self._proc)

    # -- used by the handler's monitor -------------------------------------------

    def _tree(self) -> list[psutil.Process]:
        """The child's tree now, plus descendants seen earlier that are still alive."""
        procs = {p.pid: p for p in collect_tree(self.pid, create_time=self.create_time)}
        with self._seen_lock:
            for pid, proc in self._seen.items():
                if pid not in procs and is_alive(proc):
                    procs[pid] = proc
        return list(procs.values())

    def _check(self) -> None:
        """Monitor tick: remember descendants, enforce the memory cap, flush a stale log."""
        self._log.flush_if_stale()
        if self._stop_requested or not self._root_running():
            return
        tree = watched_tree(self.pid, create_time=self.create_time)  # twice a second: the cheap look
        with self._seen_lock:
            self._seen = {pid: p for pid, p in self._seen.items() if is_alive(p)}
            self._seen.update((p.pid, p) for p in tree if p.pid != self.pid)
        reason = self._time_limit_passed()
        if reason is not None:
            self._kill_for(reason)
            return
        if self.memory_limit_mb is None:
            return
        rss = 0
        for proc in tree:
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                continue  # exited or not ours to read
        if rss > self.memory_limit_mb * _MB:
            self._kill_for(f"memory limit {self.memory_limit_mb} MB exceeded (RSS {rss // _MB} MB)")

    def _kill_for(self, reason: str) -> None:
        log.warning("%s (pid %s): %s; killing it", self.name, self.pid, reason)
        self._stop_requested = True
        # Kill in its own thread so the monitor keeps watching other children.
        threading.Thread(target=self.stop, args=(reason,), name=f"envy-{self.name}-kill", daemon=True).start()

    def _time_limit_passed(self) -> str | None:
        """The reason when the render ran past its timeout or printed nothing for its stall limit."""
        now = time.monotonic()
        tick, self._last_tick = now - self._last_tick, now
        if not (self.limits.timeout_s or self.limits.stall_s):
            return None
        if self._suspended():
            # Someone at the machine paused it (NIMBY): neither its run time nor its silence counts.
            self._suspended_s += tick
            self._last_output = max(self._last_output, now)
            return None
        timeout, stall = self.limits.timeout_s, self.limits.stall_s
        if timeout and now - self.started_monotonic - self._suspended_s > timeout:
            return f"timed out after {timeout:g} s"
        if stall and now - self._last_output > stall:
            return f"no output for {stall:g} s"
        return None

    def _suspended(self) -> bool:
        try:
            return self._proc is not None and self._proc.status() == psutil.STATUS_STOPPED
        except psutil.Error:
            return False
