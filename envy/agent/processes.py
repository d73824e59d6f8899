"""The agent's process handler: starts renderers, streams their output, enforces limits.

Each child runs in its own process group at low priority, with stdout and
stderr merged into its own log file and, chunk by chunk, into an ``on_output``
callback (progress lines ending in ``\\r`` arrive as they are printed). A
monitor thread sums the resident memory of each child's tree and kills the tree
when it passes the child's cap. Live children are recorded in a local state
file so that the next agent run can kill what a crashed agent left behind.

Threads per child: one reads the output pipe, one waits for the exit and
writes the result. One monitor thread serves the whole handler.
OS-specific mechanics live in ``envy.platform.processes``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import psutil

from envy.agent.child import Child, ChildResult, OutputCallback, TimeLimits
from envy.loop_guard import LoopGuard
from envy.platform.die_with_agent import DieWithAgent
from envy.platform.processes import (
    is_same_process,
    kill_tree,
    lower_priority,
    popen_kwargs_new_group,
    process_identity,
)

__all__ = ["Child", "ChildResult", "ProcessHandler"]
from envy.agent.child_log import ChildLog
from envy.share.atomic import atomic_write_json, read_json
from envy.share.fs import REAL_FS, PathLike, ShareFS

log = logging.getLogger(__name__)

RECORD_NAME = "children.json"
_RECORD_VERSION = 1
_MONITOR_INTERVAL_S = 0.5
_KILL_TIMEOUT_S = 5.0


class _UnsyncedLocalFS(ShareFS):
    """The real filesystem, but files are written without fsync: for the local children record only.

    The record is for the next agent run after a crash of the agent, and the page cache outlives
    the process; after a crash of the machine no child is left to kill. It is rewritten as each
    render starts and ends, and two fsyncs per frame were milliseconds on a busy disk.
    """

    def write_new(self, path: PathLike, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o664)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


_RECORD_FS = _UnsyncedLocalFS()


class ProcessHandler:
    """Starts and watches the agent's children.

    ``state_dir`` is a local per-host folder (never the share); the handler
    keeps its record of live children there. Use as a context manager, or call
    ``close()``; leaving the ``with`` block also stops the children.
    """

    def __init__(self, state_dir: Path, *, low_priority: bool = True, tie_to_agent: bool = True) -> None:
        self._state_dir = Path(state_dir)
        # Children die with this process even if it is killed hard (envy/platform/die_with_agent.py).
        self._keeper = DieWithAgent() if tie_to_agent else None
        self._state_dir.mkdir(parents=True, exist_ok=True)
        self._record_path = self._state_dir / RECORD_NAME
        self._low_priority = low_priority
        self._lock = threading.Lock()
        self._children: list[Child] = []
        self._me = process_identity(os.getpid())
        # Children recorded by earlier agent runs: kept in our record until
        # kill_orphans() has dealt with them, whatever we start before that.
        self._previous = self._read_record()
        self._closed = threading.Event()
        self._monitor = threading.Thread(target=self._monitor_loop, name="envy-process-monitor", daemon=True)
        self._monitor.start()

    def __enter__(self) -> ProcessHandler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all("agent stopping")
        self.close()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        memory_limit_mb: int | None = None,
        on_output: OutputCallback | None = None,
        timeout_s: float = 0.0,
        stall_s: float = 0.0,
    ) -> Child:
        """Start ``argv`` (a list, never a shell string) and return at once.

        ``env`` is the child's complete environment (as for ``subprocess``);
        None inherits the agent's. ``timeout_s`` and ``stall_s`` (0: none) kill the whole tree
        when it runs longer, or prints nothing for longer; the reason is in the result. The log's
        folder must exist: it is not created, so an unmounted share never gets a fresh tree. OSError from
        starting (program not found, ...) propagates after being logged.
        """
        if self._closed.is_set():
            raise RuntimeError("ProcessHandler is closed")
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv must be a list of arguments, not a string")
        args = [os.fspath(a) for a in argv]
        if not args:
            raise ValueError("argv is empty")
        child_log = ChildLog(Path(log_path))
        started = datetime.now().astimezone().isoformat(timespec="seconds")
        try:
            start = self._keeper.popen if self._keeper is not None else subprocess.Popen
            popen = start(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                bufsize=0,
                **popen_kwargs_new_group(low_priority=self._low_priority),  # type: ignore[call-overload]
            )
        except OSError as exc:
            child_log.write_note(f"{started} could not start {json.dumps(args)}: {exc}")
            child_log.close()
            log.error("could not start %s: %s", name, exc)
            raise
        started_monotonic = time.monotonic()
        child_log.write_note(f"{started} started pid {popen.pid}: {json.dumps(args)}")
        try:
            proc: psutil.Process | None = psutil.Process(popen.pid)
        except psutil.Error:
            proc = None  # cannot watch it through psutil; Popen still can
        if proc is not None and self._low_priority:
            lower_priority(proc)
        create_time = _create_time(proc)
        child = Child(
            name, popen, proc, create_time, child_log, started_monotonic, memory_limit_mb, on_output, self._finished,
            TimeLimits(timeout_s, stall_s),
        )
        with self._lock:
            self._children.append(child)
            self._write_record()
        child._begin()
        log.info("started %s (pid %s): %s", name, popen.pid, args)
        return child

    def children(self) -> list[Child]:
        """The children that have not finished yet."""
        with self._lock:
            return [c for c in self._children if c.running]

    def stop_all(self, reason: str = "stopped") -> None:
        for child in self.children():
            child.stop(reason)

    def kill_orphans(self) -> list[int]:
        """Kill children a previous agent run on this host left running; return the killed pids.

        A recorded child counts only if its pid still belongs to a process
        created at the recorded time: a reused pid is someone else's process.
        Children of an agent process that is still running (two agents on one
        state folder) are left alone and stay in the record.
        """
        with self._lock:
            previous = list(self._previous)
        killed: list[int] = []
        kept: list[dict[str, object]] = []
        for entry in previous:
            parsed = _parse_entry(entry)
            if parsed is None:
                log.warning("ignoring a malformed entry in %s: %r", self._record_path, entry)
                continue
            pid, created, name, agent = parsed
            if agent is not None and agent[0] != os.getpid() and is_same_process(*agent):
                log.warning(
                    "%s (pid %s) belongs to agent pid %s, which is still running; leaving it", name, pid, agent[0]
                )
                kept.append(entry)
                continue
            gone = kill_tree(pid, _KILL_TIMEOUT_S, create_time=created)
            if gone:
                log.warning("killed %s (pid %s) left running by a previous agent: pids %s", name, pid, gone)
            killed.extend(gone)
        with self._lock:
            self._previous = kept
            self._write_record()
        return killed

    def close(self) -> None:
        """Stop the monitor thread and hand the state folder over.

        Running children are not stopped (see ``stop_all``) and stay in the
        record, which this handler no longer writes: a new handler on the same
        ``state_dir`` owns it, and its ``kill_orphans`` will kill them.
        """
        self._closed.set()
        if self._monitor is not threading.current_thread():
            self._monitor.join(timeout=5.0)

    # -- internals ------------------------------------------------------------

    def _monitor_loop(self) -> None:
        guard = LoopGuard("the process monitor", log)  # this thread's own
        pause = _MONITOR_INTERVAL_S
        while not self._closed.wait(pause):
            pause = _MONITOR_INTERVAL_S
            try:
                for child in self.children():
                    try:  # one child's trouble does not stop the others being watched
                        child._check()
                    except Exception as exc:  # MemoryError included: caps and time limits go on
                        pause = max(pause, guard.failed(exc))
            except Exception as exc:
                pause = max(pause, guard.failed(exc))
            if pause == _MONITOR_INTERVAL_S:
                guard.ok()

    def _finished(self, child: Child) -> None:
        with self._lock:
            if child in self._children:
                self._children.remove(child)
            self._write_record()
        result = child.poll()
        log.info("%s (pid %s) finished: %s", child.name, child.pid, result)

    def _read_record(self) -> list[dict[str, object]]:
        # The record is in this machine's local state folder, never on the share:
        # the real filesystem is the only one it can be on.
        try:
            record = read_json(self._record_path, fs=REAL_FS)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self._record_path, exc)
            return []
        entries = record.get("children") if isinstance(record, dict) else None
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def _write_record(self) -> None:
        """Publish our live children and the previous ones not yet dealt with. Caller holds ``_lock``."""
        if self._closed.is_set():
            return
        agent = {"pid": self._me[0], "create_time": self._me[1]} if self._me else None
        entries = [
            {"pid": c.pid, "create_time": c.create_time, "name": c.name, "agent": agent}
            for c in self._children
            if c.running
        ]
        record = {"version": _RECORD_VERSION, "children": entries + self._previous}
        try:
            atomic_write_json(self._record_path, record, fs=_RECORD_FS)
        except OSError as exc:
            log.warning("cannot record children in %s: %s", self._record_path, exc)


def _parse_entry(entry: dict[str, object]) -> tuple[int, float, str, tuple[int, float] | None] | None:
    """``(pid, create_time, name, agent identity)`` from a record entry, or None if malformed."""
    try:
        pid, created = int(entry["pid"]), float(entry["create_time"])  # type: ignore[call-overload, arg-type]
        agent = entry.get("agent")
        identity = (int(agent["pid"]), float(agent["create_time"])) if isinstance(agent, dict) else None
    except (KeyError, TypeError, ValueError):
        return None
    return pid, created, str(entry.get("name", "?")), identity


def _create_time(proc: psutil.Process | None) -> float:
    try:
        if proc is not None:
            return proc.create_time()
    except psutil.Error:
        pass
    return time.time()
