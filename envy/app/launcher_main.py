"""The launcher on the share (``app/envy.pyz``): runs the current version, and moves agents to a new one.

Copied verbatim into a stdlib-only zipapp: it must run on any Python 3.10+
(python.org or Houdini's hython) and never change while machines use it.

For ``agent`` it stays as a small parent process: it reads ``current.json``
(one small read every ENVY_APP_CHECK_S seconds, default 30) and, when a new
version is published and the agent's own status file says it is idle (no
frame in hand), stops it and starts the new version. An agent that exits with
75 (``restart()``) is started again at once, in the current version.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

EXIT_RESTART = 75
HERE = os.path.dirname(os.path.abspath(sys.argv[0]))


def current_version() -> str | None:
    try:
        with open(os.path.join(HERE, "current.json"), "rb") as f:
            data = json.loads(f.read(4096).decode("utf-8"))
        version = data["version"]
        return version if isinstance(version, str) and "/" not in version and "\\" not in version else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def status_file(argv: list[str]) -> str:
    host = (
        option(argv, "--host")
        or (os.environ.get("COMPUTERNAME") if os.name == "nt" else None)
        or socket.gethostname()
        or "unknown-host"
    )
    share = option(argv, "--share") or os.environ.get("ENVY_SHARE") or os.path.dirname(HERE)
    return os.path.join(share, "status", host.split(".")[0].lower() + ".json")


def is_idle(path: str, pid: int) -> bool:
    try:
        with open(path, "rb") as f:
            st = json.loads(f.read(1 << 20).decode("utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(st, dict) or st.get("pid") != pid:
        return False
    workers = st.get("workers")
    workers = workers if isinstance(workers, list) else []
    busy = any(isinstance(w, dict) and w.get("frame") for w in workers)
    # "rendering" with no frame in hand is an agent in render mode waiting for work: idle too.
    return st.get("state") in ("idle", "rendering", "too-old", "waiting-for-share") and not busy


def start(version: str, argv: list[str]) -> subprocess.Popen[bytes]:
    pyz = os.path.join(HERE, "versions", version, "envy.pyz")
    flags = ["-I"] if sys.flags.isolated else []
    env = dict(os.environ, ENVY_APP_LAUNCHER=os.path.abspath(sys.argv[0]), ENVY_APP_VERSION=version)
    return subprocess.Popen([sys.executable] + flags + [pyz] + argv, env=env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def supervise(version: str, argv: list[str]) -> int | None:
    """Run the agent; return its exit code, or None to start the current version instead."""
    every = float(os.environ.get("ENVY_APP_CHECK_S", "30"))
    proc = start(version, argv)
    status = status_file(argv)
    try:
        while True:
            try:
                code = proc.wait(timeout=every)
            except subprocess.TimeoutExpired:
                newer = current_version()
                if newer and newer != version and is_idle(status, proc.pid):
                    print(
                        f"envy launcher: version {newer} is published; moving the idle agent to it",
                        file=sys.stderr,
                        flush=True,
                    )
                    stop(proc)
                    return None
                continue
            return None if code == EXIT_RESTART else code
    except KeyboardInterrupt:
        return 130
    finally:
        if proc.poll() is None:  # the launcher is told to stop (Ctrl-C, SIGTERM): so is its agent
            stop(proc)


def _exit_on_terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    argv = sys.argv[1:]
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _exit_on_terminate)
    while True:
        version = current_version()
        if version is None:
            print(f"envy launcher: no version is published in {HERE} (run: envy app update)", file=sys.stderr)
            return 2
        if argv[:1] != ["agent"]:
            return subprocess.call(
                [sys.executable]
                + (["-I"] if sys.flags.isolated else [])
                + [os.path.join(HERE, "versions", version, "envy.pyz")]
                + argv
            )
        code = supervise(version, argv)
        if code is not None:
            return code


if __name__ == "__main__":
    sys.exit(main())
