"""Start a renderer that dies with the agent, even when the agent is killed hard.

Run as a script, never imported by the agent (stdlib only, so it starts in a
few milliseconds with ``python -I -S``)::

    python -I -S .../pdeath_start.py exec  AGENT_PID -- renderer argv...
    python -I -S .../pdeath_start.py watch AGENT_PID -- renderer argv...

``exec`` (Linux): ask the kernel for SIGKILL when our parent dies
(``prctl(PR_SET_PDEATHSIG)``), then exec the renderer, which keeps the
setting (it is kept across exec and dropped only for set-uid programs).
The agent may die between fork and prctl: then the signal would never come,
so after prctl we check that our parent is still AGENT_PID and exit at once
if it is not. Caveat: the kernel sends the signal when the *thread* that
forked us exits, so the agent must start renders from a thread that lives
as long as they do.

``watch`` (macOS and any POSIX without prctl): stay as a small supervisor.
The renderer runs as our child in our process group; we wait for the agent's
exit (kqueue NOTE_EXIT on macOS/BSD, else a poll of getppid) and then kill
the whole group. Our exit code is the renderer's.

Either way the renderer's process group (the agent starts us in a new
session) is the one the agent's ``kill_tree`` stops normally.
"""

from __future__ import annotations

import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
EXIT_USAGE = 2
EXIT_AGENT_GONE = 125  # the agent died before the renderer started
EXIT_CANNOT_START = 127
_WATCH_POLL_S = 0.2


def _usage() -> int:
    sys.stderr.write("usage: pdeath_start.py exec|watch AGENT_PID -- ARGV...\n")
    return EXIT_USAGE


def _set_parent_death_signal(sig: int) -> bool:
    """Linux: deliver ``sig`` to this process when its parent (thread) dies. False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0


def _exec(argv: list[str]) -> int:
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write(f"envy: cannot start {argv[0]}: {exc}\n")
    return EXIT_CANNOT_START


def run_exec(agent_pid: int, argv: list[str]) -> int:
    if not _set_parent_death_signal(signal.SIGKILL):
        return run_watch(agent_pid, argv)  # no prctl here: fall back to watching
    if os.getppid() != agent_pid:
        return EXIT_AGENT_GONE  # the agent died before prctl took effect
    return _exec(argv)


def _wait_agent_exit_kqueue(agent_pid: int, child_pid: int) -> bool:
    """macOS/BSD: block until the agent or the renderer exits; True if the agent went first."""
    import select

    kq = select.kqueue()  # type: ignore[attr-defined]
    try:
        events = [
            select.kevent(pid, filter=select.KQ_FILTER_PROC, flags=select.KQ_EV_ADD | select.KQ_EV_ONESHOT,  # type: ignore[attr-defined]
                          fflags=select.KQ_NOTE_EXIT)  # type: ignore[attr-defined]
            for pid in (agent_pid, child_pid)
        ]
        try:
            kq.control(events, 0)
        except OSError:
            return os.getppid() != agent_pid  # the agent is already gone
        if os.getppid() != agent_pid:
            return True  # died before the watch was in place
        for ev in kq.control(None, 2, None):
            if ev.ident == agent_pid:
                return True
        return False
    finally:
        kq.close()


def run_watch(agent_pid: int, argv: list[str]) -> int:
    if os.getppid() != agent_pid:
        return EXIT_AGENT_GONE
    pid = os.fork()
    if pid == 0:  # the renderer
        os._exit(_exec(argv))
    # Termination requests from the agent's kill_tree reach the whole group anyway;
    # make sure we pass them on if only we were signalled.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(pid, s))
    agent_died = False
    if hasattr(__import__("select"), "kqueue"):
        agent_died = _wait_agent_exit_kqueue(agent_pid, pid)
    else:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return _exit_code(status)
            if os.getppid() != agent_pid:
                agent_died = True
                break
            time.sleep(_WATCH_POLL_S)
    if agent_died:
        try:
            os.killpg(os.getpgrp(), signal.SIGKILL)  # the whole render tree, and us
        except OSError:
            os.kill(pid, signal.SIGKILL)
    _done, status = os.waitpid(pid, 0)
    return _exit_code(status)


def _exit_code(status: int) -> int:
    """A shell-style exit code: the renderer's own, or 128 + the signal that killed it."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def main(args: list[str]) -> int:
    if len(args) < 4 or args[0] not in ("exec", "watch") or args[2] != "--":
        return _usage()
    try:
        agent_pid = int(args[1])
    except ValueError:
        return _usage()
    argv = args[3:]
    return run_exec(agent_pid, argv) if args[0] == "exec" else run_watch(agent_pid, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
