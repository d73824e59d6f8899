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

import codecs
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import psutil

from envy.platform.processes import (
    collect_tree,
    has_exited,
    is_alive,
    is_same_process,
    kill_procs,
    kill_tree,
    lower_priority,
    popen_kwargs_new_group,
    process_identity,
)
from envy.share.atomic import atomic_write_json, read_json

log = logging.getLogger(__name__)

RECORD_NAME = "children.json"
_RECORD_VERSION = 1
_MONITOR_INTERVAL_S = 0.5
_READ_SIZE = 64 * 1024
# The log may be on a network share: flush at line ends, and progress-only
# output (``\r`` updates) at most this often.
_LOG_FLUSH_INTERVAL_S = 1.0
# After the child exits, how long its descendants may keep the output pipe
# open before they count as left behind and are killed.
_LEFTOVER_GRACE_S = 2.0
# How often the exit waiter looks for the child's exit; it must not reap the
# child (see Child._wait_for_exit), so it cannot block in wait().
_EXIT_POLL_S = 0.1
_KILL_TIMEOUT_S = 5.0
_MB = 1024 * 1024

OutputCallback = Callable[[str], None]


@dataclass(frozen=True)
class ChildResult:
    returncode: int | None
    killed_reason: str | None  # "stopped", "memory limit 512 MB exceeded (RSS 700 MB)", ...
    log_path: Path
    duration_s: float


class _ChildLog:
    """One child's log file: opened once, written as output arrives.

    A log that cannot be written (a share gone away, a full disk) is dropped
    with a warning; the child keeps running.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._dirty = False
        self._at_line_start = True
        self._last_flush = time.monotonic()
        try:
            self._file = open(path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        except OSError as exc:
            log.warning("cannot open log %s (%s); the child runs without a log", path, exc)

    def write(self, data: bytes, *, flush: bool = False, own_line: bool = False) -> None:
        with self._lock:
            if self._file is None or not data:
                return
            if own_line and not self._at_line_start:
                data = b"\n" + data
            try:
                self._file.write(data)
                self._dirty = True
                self._at_line_start = data.endswith(b"\n")
                if flush or b"\n" in data or time.monotonic() - self._last_flush >= _LOG_FLUSH_INTERVAL_S:
                    self._flush()
            except OSError as exc:
                self._drop(exc)

    def write_note(self, text: str) -> None:
        """An Envy line (header, footer, notes), always on a line of its own."""
        self.write(f"=== envy: {text}\n".encode("utf-8", "replace"), flush=True, own_line=True)

    def flush_if_stale(self) -> None:
        with self._lock:
            if self._file is not None and self._dirty and time.monotonic() - self._last_flush >= _LOG_FLUSH_INTERVAL_S:
                try:
                    self._flush()
                except OSError as exc:
                    self._drop(exc)

    def close(self) -> None:
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.close()  # close is where a network share reports write errors
            except OSError as exc:
                log.warning("log %s may be incomplete: %s", self.path, exc)
            self._file = None

    def _flush(self) -> None:
        assert self._file is not None
        self._file.flush()
        self._dirty = False
        self._last_flush = time.monotonic()

    def _drop(self, exc: OSError) -> None:
        log.warning("cannot write log %s (%s); the child keeps running without a log", self.path, exc)
        try:
            assert self._file is not None
            self._file.close()
        except OSError:
            pass
        self._file = None


class Child:
    """A started child process. Made by ``ProcessHandler.start``."""

    def __init__(
        self,
        name: str,
        popen: subprocess.Popen[bytes],
        proc: psutil.Process | None,
        create_time: float,
        child_log: _ChildLog,
        started_monotonic: float,
        memory_limit_mb: int | None,
        on_output: OutputCallback | None,
        on_finished: Callable[[Child], None],
    ) -> None:
        self.name = name
        self.pid = popen.pid
        self.create_time = create_time
        self.log_path = child_log.path
        self.started_monotonic = started_monotonic
        self.memory_limit_mb = memory_limit_mb
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
                self._log.write(data)
                self._emit(decoder.decode(data))
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
        """Wait for the child's exit, clean up what it left running, then reap it and finish.

        The child is reaped last: until then its pid (a POSIX zombie, or a
        Windows process whose handle we hold) cannot be given to another
        process, so its tree and process group are still unambiguously its own.
        """
        while self._root_running():
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
        tree = collect_tree(self.pid, create_time=self.create_time)
        with self._seen_lock:
            self._seen = {pid: p for pid, p in self._seen.items() if is_alive(p)}
            self._seen.update((p.pid, p) for p in tree if p.pid != self.pid)
        if self.memory_limit_mb is None:
            return
        rss = 0
        for proc in tree:
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                continue  # exited or not ours to read
        if rss > self.memory_limit_mb * _MB:
            reason = f"memory limit {self.memory_limit_mb} MB exceeded (RSS {rss // _MB} MB)"
            log.warning("%s (pid %s): %s; killing it", self.name, self.pid, reason)
            self._stop_requested = True
            # Kill in its own thread so the monitor keeps watching other children.
            threading.Thread(target=self.stop, args=(reason,), name=f"envy-{self.name}-kill", daemon=True).start()


class ProcessHandler:
    """Starts and watches the agent's children.

    ``state_dir`` is a local per-host folder (never the share); the handler
    keeps its record of live children there. Use as a context manager, or call
    ``close()``; leaving the ``with`` block also stops the children.
    """

    def __init__(self, state_dir: Path, *, low_priority: bool = True) -> None:
        self._state_dir = Path(state_dir)
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
    ) -> Child:
        """Start ``argv`` (a list, never a shell string) and return at once.

        ``env`` is the child's complete environment (as for ``subprocess``);
        None inherits the agent's. The log's folder must exist: it is not
        created, so an unmounted share never gets a fresh tree. OSError from
        starting (program not found, ...) propagates after being logged.
        """
        if self._closed.is_set():
            raise RuntimeError("ProcessHandler is closed")
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv must be a list of arguments, not a string")
        args = [os.fspath(a) for a in argv]
        if not args:
            raise ValueError("argv is empty")
        child_log = _ChildLog(Path(log_path))
        started = datetime.now().astimezone().isoformat(timespec="seconds")
        try:
            popen = subprocess.Popen(
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
            name, popen, proc, create_time, child_log, started_monotonic, memory_limit_mb, on_output, self._finished
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
                log.warning("%s (pid %s) belongs to agent pid %s, which is still running; leaving it", name, pid, agent[0])
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
        while not self._closed.wait(_MONITOR_INTERVAL_S):
            for child in self.children():
                try:
                    child._check()
                except Exception:
                    log.exception("monitoring %s (pid %s) failed", child.name, child.pid)

    def _finished(self, child: Child) -> None:
        with self._lock:
            if child in self._children:
                self._children.remove(child)
            self._write_record()
        result = child.poll()
        log.info("%s (pid %s) finished: %s", child.name, child.pid, result)

    def _read_record(self) -> list[dict[str, object]]:
        try:
            record = read_json(self._record_path)
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
            atomic_write_json(self._record_path, record)
        except OSError as exc:
            log.warning("cannot record children in %s: %s", self._record_path, exc)


def _parse_entry(entry: dict[str, object]) -> tuple[int, float, str, tuple[int, float] | None] | None:
    """``(pid, create_time, name, agent identity)`` from a record entry, or None if malformed."""
    try:
        pid, created = int(entry["pid"]), float(entry["create_time"])  # type: ignore[arg-type]
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
