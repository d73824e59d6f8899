"""Process control whose mechanics differ between Windows, macOS and Linux.

This is the one place for OS-specific process code: new process groups,
priorities, and killing a whole process tree. Everything else (the agent's
ProcessHandler) calls these functions and never branches on the OS itself.

Killing follows psutil's ``kill_proc_tree`` recipe: collect the tree first
(a dead parent no longer leads to its children), terminate everything,
``wait_procs``, kill the survivors, wait again. On POSIX the child leads its
own session, so the process group also finds descendants that were re-parented
after their parent died; Windows has no such group, so there we walk the tree
with psutil only.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable

import psutil

log = logging.getLogger(__name__)

_WINDOWS = sys.platform == "win32"

# Linux derives create_time from the boot time in /proc/stat, which moves by up
# to a second when the clock is adjusted; Windows and macOS report the exact
# creation time. A reused pid within this window of the original's creation
# would need the pid space to wrap in under a second.
_CREATE_TIME_TOLERANCE_S = 1.0 if sys.platform.startswith("linux") else 0.01

_POSIX_NICE = 10
_WAIT_STEP_S = 0.05


def popen_kwargs_new_group(*, low_priority: bool = False) -> dict[str, object]:
    """``subprocess.Popen`` keyword arguments that start the child in its own process group.

    Its own group (a new session on POSIX) keeps the user's Ctrl-C in the
    agent's console away from the renderer and lets ``kill_tree`` find every
    descendant. With ``low_priority`` Windows starts the child below normal
    priority from its first instruction (and its children inherit that); POSIX
    has no such flag, call ``lower_priority`` right after starting.
    """
    if _WINDOWS:
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
        if low_priority:
            flags |= subprocess.BELOW_NORMAL_PRIORITY_CLASS  # type: ignore[attr-defined]
        return {"creationflags": flags}
    return {"start_new_session": True}


def lower_priority(proc: psutil.Process) -> None:
    """Lower the CPU (and where supported, disk) priority of ``proc``; log, never raise.

    The renderer runs on machines people are using: it must yield to them.
    """
    try:
        if _WINDOWS:
            proc.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)  # type: ignore[attr-defined]
        else:
            # Never raise the priority of a child that is already nicer.
            proc.nice(max(proc.nice(), _POSIX_NICE))
    except (psutil.Error, OSError) as exc:
        log.warning("could not lower the priority of pid %s: %s", proc.pid, exc)
        return
    try:
        if _WINDOWS:
            proc.ionice(psutil.IOPRIO_LOW)  # type: ignore[attr-defined]
        elif sys.platform.startswith("linux"):
            proc.ionice(psutil.IOPRIO_CLASS_BE, value=7)  # lowest best-effort level
    except (psutil.Error, OSError, ValueError) as exc:
        log.debug("could not lower the I/O priority of pid %s: %s", proc.pid, exc)


def process_identity(pid: int) -> tuple[int, float] | None:
    """``(pid, create_time)`` of a running process, or None if there is none.

    A recorded pid alone is not enough: the OS reuses pids (Windows quickly),
    so a record must also carry the creation time.
    """
    try:
        return pid, psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def is_same_process(pid: int, create_time: float) -> bool:
    """True if ``pid`` is still the process that was created at ``create_time``."""
    identity = process_identity(pid)
    return identity is not None and abs(identity[1] - create_time) <= _CREATE_TIME_TOLERANCE_S


def collect_tree(pid: int, *, create_time: float | None = None) -> list[psutil.Process]:
    """The process ``pid`` and all its descendants, collected before anything is signalled.

    With ``create_time``, a process now holding ``pid`` that was created at a
    different time is a stranger (a reused pid): nothing is collected. If
    ``pid`` is gone, nothing is collected either: its process group may by now
    belong to whoever got the pid next. Callers that own the child keep it
    unreaped (a zombie still counts) until its leftovers are dealt with.
    """
    procs: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(pid)
        if create_time is not None and abs(root.create_time() - create_time) > _CREATE_TIME_TOLERANCE_S:
            return []
        procs[root.pid] = root
        # A zombie has no children (they were re-parented as it exited), and the walk reads
        # every process's parent (all of /proc on Linux): 10-40 ms after each frame on a busy box.
        if _WINDOWS or root.status() != psutil.STATUS_ZOMBIE:
            for child in root.children(recursive=True):
                procs[child.pid] = child
    except psutil.NoSuchProcess:
        return []
    except psutil.AccessDenied as exc:
        log.warning("cannot inspect pid %s: %s", pid, exc)
        return []
    if not _WINDOWS:
        # Descendants whose parent died were re-parented away from the tree
        # but stay in the child's process group.
        for member in _process_group_members(pid):
            procs.setdefault(member.pid, member)
    procs.pop(os.getpid(), None)
    return list(procs.values())


def watched_tree(pid: int, *, create_time: float | None = None) -> list[psutil.Process]:
    """``collect_tree`` for a watcher's regular look at a running child, cheaper where the OS allows.

    Linux lists a process's children in ``/proc/<pid>/task/<tid>/children``: a few reads for a
    render's tree, where psutil reads the parent of every process on the machine (10-40 ms a look
    on a busy 2-core box, twice a second per render). That file may miss a child forked or
    re-parented during the read; the next look finds it, and stopping a render uses
    ``collect_tree`` (and the process group). Elsewhere, or without that file, ``collect_tree``.
    """
    if not sys.platform.startswith("linux") or not os.path.exists(f"/proc/{pid}/task/{pid}/children"):
        return collect_tree(pid, create_time=create_time)  # (or a kernel without CONFIG_PROC_CHILDREN)
    try:
        root = psutil.Process(pid)
        if create_time is not None and abs(root.create_time() - create_time) > _CREATE_TIME_TOLERANCE_S:
            return []
    except psutil.NoSuchProcess:
        return []
    except psutil.AccessDenied as exc:
        log.warning("cannot inspect pid %s: %s", pid, exc)
        return []
    pids, i = [pid], 0
    while i < len(pids):
        pids.extend(c for c in _proc_children(pids[i]) if c not in pids)
        i += 1
    procs: dict[int, psutil.Process] = {pid: root}
    for child_pid in pids[1:]:
        try:
            procs[child_pid] = psutil.Process(child_pid)
        except psutil.Error:
            continue
    for member in _process_group_members(pid):
        procs.setdefault(member.pid, member)
    procs.pop(os.getpid(), None)
    return list(procs.values())


def _proc_children(pid: int) -> list[int]:
    """Linux: the children of ``pid`` from each of its threads' ``children`` file; [] once it is gone."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue  # the thread or the process ended meanwhile
    return found


def kill_procs(procs: Iterable[psutil.Process], timeout: float = 5.0) -> list[int]:
    """Terminate ``procs``, wait, kill the survivors, wait again; return the pids now gone.

    Processes that vanish or that we may not touch are tolerated. Our own
    direct children are not reaped here: their ``subprocess.Popen`` must
    collect the exit status, so for them "gone" means exited (a zombie).
    """
    procs = list(procs)
    signalled = _signal_all(procs, kill=False)
    alive = _wait_gone(signalled, timeout)
    if alive:
        log.info("pids %s ignored terminate; killing them", [p.pid for p in alive])
        _signal_all(alive, kill=True)
        alive = _wait_gone(alive, timeout)
        if alive:
            log.warning("pids %s survived kill", [p.pid for p in alive])
    alive_pids = {p.pid for p in alive}
    return sorted(p.pid for p in signalled if p.pid not in alive_pids)


def kill_tree(pid: int, timeout: float = 5.0, *, create_time: float | None = None) -> list[int]:
    """Kill ``pid`` and its whole tree (see ``collect_tree``); return the pids that were killed."""
    return kill_procs(collect_tree(pid, create_time=create_time), timeout)


def has_exited(popen: subprocess.Popen[bytes], proc: psutil.Process | None = None) -> bool:
    """True once our child has exited, without releasing its pid for reuse.

    POSIX: ``Popen.poll`` would reap the child, after which its pid (and its
    process group id) may go to another process; a zombie keeps both reserved,
    so look at the status instead. Windows: the handle ``Popen`` holds keeps
    the pid reserved, and its exit status is the authoritative answer.
    """
    if _WINDOWS:
        return popen.poll() is not None
    if proc is None:
        try:
            proc = psutil.Process(popen.pid)
        except psutil.NoSuchProcess:
            return True
    return not is_alive(proc)


def is_alive(proc: psutil.Process) -> bool:
    """True while ``proc`` (the very process, not a reused pid) runs; a zombie has exited."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _process_group_members(leader: int) -> list[psutil.Process]:
    """POSIX: the process group led by the (existing) process ``leader``, never the caller's group."""
    try:
        if os.getpgid(leader) != leader or leader == os.getpgrp():
            return []  # not a group leader: the group is someone else's
    except OSError:
        return []
    members = []
    for pid in psutil.pids():  # a Process object only for the members: one getpgid per pid otherwise
        try:
            if os.getpgid(pid) == leader:
                members.append(psutil.Process(pid))
        except (OSError, psutil.Error):
            continue
    return members


def _signal_all(procs: list[psutil.Process], *, kill: bool) -> list[psutil.Process]:
    """Terminate (or kill) each process; return those that were there to signal."""
    signalled = []
    for proc in procs:
        try:
            if kill:
                proc.kill()
            else:
                proc.terminate()
            signalled.append(proc)
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied as exc:
            log.warning("not allowed to stop pid %s: %s", proc.pid, exc)
    return signalled


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` for ``procs`` to exit; return those still alive."""
    own = _own_children(procs)
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if is_alive(p)]
    while alive:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        step = min(_WAIT_STEP_S, remaining)
        others = [p for p in alive if p.pid not in own]
        gone: set[int] = set()
        if others:
            gone = {p.pid for p in psutil.wait_procs(others, timeout=step)[0]}
        else:
            time.sleep(step)  # bounded poll inside a bounded wait, not a loop timer
        alive = [p for p in alive if p.pid not in gone and is_alive(p)]
    return alive


def _own_children(procs: list[psutil.Process]) -> set[int]:
    """POSIX: pids among ``procs`` whose parent is this process (waiting would reap them)."""
    if _WINDOWS:
        return set()
    me = os.getpid()
    own = set()
    for proc in procs:
        try:
            if proc.ppid() == me:
                own.add(proc.pid)
        except psutil.Error:
            continue
    return own


def suspend_procs(procs: Iterable[psutil.Process]) -> list[int]:
    """Suspend each process (SIGSTOP on POSIX, NtSuspendProcess on Windows); return the pids suspended.

    Used to pause a render while someone uses the machine: it keeps its memory
    and resumes where it was. Processes that are gone or not ours are skipped.
    """
    return _for_each(procs, psutil.Process.suspend, "pause")


def resume_procs(procs: Iterable[psutil.Process]) -> list[int]:
    """Resume processes paused by ``suspend_procs``; return the pids resumed."""
    return _for_each(procs, psutil.Process.resume, "resume")


def _for_each(procs: Iterable[psutil.Process], action: Callable[[psutil.Process], None], verb: str) -> list[int]:
    """``action`` on each process still there; the pids it worked on (refusals logged, not raised)."""
    done = []
    for proc in procs:
        try:
            action(proc)
            done.append(proc.pid)
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied as exc:
            log.warning("not allowed to %s pid %s: %s", verb, proc.pid, exc)
    return done


def lowest_priority(procs: Iterable[psutil.Process]) -> None:
    """The lowest CPU priority the OS has (idle class on Windows, nice 19 on POSIX); log, never raise."""
    for proc in procs:
        try:
            proc.nice(psutil.IDLE_PRIORITY_CLASS if _WINDOWS else 19)  # type: ignore[attr-defined]
        except (psutil.Error, OSError) as exc:
            log.debug("could not lower pid %s to the lowest priority: %s", proc.pid, exc)
