"""Shared helpers for the benchmark scripts: a throw-away farm, log timestamps, results.

Every benchmark runs real agent subprocesses (``python -m envy agent``) on a
real share in a temporary folder. Local state and config go to that folder
too (``ENVY_STATE_DIR``, ``ENVY_CONFIG_DIR``), so a benchmark never touches
the home folder. Waits are conditions with deadlines, never bare sleeps.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
TESTS_DIR = ROOT / "tests"

if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from envy import __version__  # noqa: E402
from envy.protocol.instructions import Instruction  # noqa: E402
from envy.protocol.sender import InstructionSender  # noqa: E402
from envy.share.fs import REAL_FS  # noqa: E402
from envy.share.layout import ShareLayout, init_share  # noqa: E402
from envy.waiting import WaitTimeout, wait_for  # noqa: E402,F401  (the one wait of Envy, for every benchmark)

# The agent log's time stamp (logging's asctime, local time, milliseconds).
LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"


# --------------------------------------------------------------------------- machine and results


def machine_info() -> dict[str, Any]:
    """What this machine is, for the results file and docs/benchmarks.md."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"') + f" (kernel {platform.release()})"
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": os_name,
        "envy": __version__,
        "commit": _commit(),
    }


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work on the machine skews timings)."""
    return [round(x, 2) for x in os.getloadavg()]


_LOAD_AT_START: list[float] | None = None


def wait_quiet(max_load: float = 1.0, timeout: float = 300.0) -> list[float]:
    """Wait (up to ``timeout``) until the 1-minute load average is below ``max_load``.

    Benchmarks time things; on a shared machine other people's test runs
    skew the figures. The load seen when the benchmark starts is recorded in
    the results either way.
    """
    global _LOAD_AT_START
    if os.getloadavg()[0] >= max_load:
        print(f"(waiting up to {timeout:g} s for the machine to be quiet: load {load_average()})")
        try:
            wait_for(lambda: os.getloadavg()[0] < max_load, timeout, f"a load average below {max_load:g}", 5.0)
        except WaitTimeout:
            pass  # run anyway; the load is recorded and reported below
    _LOAD_AT_START = load_average()
    if _LOAD_AT_START[0] >= max_load:
        print(f"(machine still busy, load {_LOAD_AT_START}: figures may be skewed)")
    return _LOAD_AT_START


def add_load_args(parser: Any) -> None:
    parser.add_argument("--max-load", type=float, default=1.0,
                        help="wait for the 1-minute load average to drop below this first (default 1.0)")
    parser.add_argument("--quiet-timeout", type=float, default=120.0,
                        help="wait at most this long for a quiet machine, then run anyway (default 120 s)")


def begin(args: Any) -> None:
    """Wait for a quiet machine (see wait_quiet), as the common arguments say."""
    wait_quiet(args.max_load, args.quiet_timeout)


def save_results(name: str, data: Mapping[str, Any]) -> Path:
    """Write ``benchmarks/results/NAME.json`` (with the machine, the load and the time of the run)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    record = {"benchmark": name, "run_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": machine_info(), "load_average_at_start": _LOAD_AT_START,
              "load_average_at_end": load_average(), **data}
    path.write_text(json.dumps(record, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; q=100 is the maximum."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_stats(values: Sequence[float]) -> dict[str, float]:
    return {"n": len(values), "min": min(values), "p50": pct(values, 50), "mean": statistics.fmean(values),
            "p90": pct(values, 90), "p100": max(values)}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------- waiting and logs


def log_time(line: str) -> float | None:
    """Seconds since the epoch of an agent log line (its local-time stamp), or None."""
    try:
        return datetime.strptime(line[:23], LOG_TIME_FORMAT).timestamp()
    except ValueError:
        return None


def log_events(path: Path, needle: str) -> list[tuple[float, str]]:
    """(time, line) of each line of the log at ``path`` that contains ``needle``."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        if needle in line:
            t = log_time(line)
            if t is not None:
                events.append((t, line))
    return events


# --------------------------------------------------------------------------- renderer profiles


def write_profile(path: Path, name: str, extension: str, executable: str, argv: Sequence[str]) -> Path:
    """A user renderer profile (YAML) for stand-in frames: ``executable argv...`` per frame file."""
    import yaml

    doc = {
        "name": name,
        "description": f"benchmark stand-in renderer: {executable} {' '.join(argv)}",
        "extensions": [extension],
        "executables": {"linux": [executable], "darwin": [executable], "windows": [executable]},
        "argv": list(argv),
        "ok_exit_codes": [0],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def sleep_profile(path: Path, seconds: float, extension: str = ".frame") -> Path:
    """A renderer that takes ``seconds`` per frame, run by bash (starts in a few milliseconds).

    It prints its own start and end time (bash's built-in ``$EPOCHREALTIME``,
    no extra process) into the frame's log, so a benchmark can tell the
    renderer's time from Envy's. The scene path travels as an argument
    (``$1``), never inside the script text.
    """
    script = f"echo envy-bench-start $EPOCHREALTIME; sleep {seconds:g}; echo envy-bench-end $EPOCHREALTIME"
    return write_profile(path, "benchframe", extension, "/bin/bash", ["-c", script, "envy-frame", "{scene}"])


# --------------------------------------------------------------------------- a farm of agent processes


class BenchFarm:
    """A share in a temp folder and agent subprocesses on it. Use as a context manager."""

    def __init__(self, root: Path | None = None, share: Path | None = None, user: str = "bench",
                 keep: bool = False) -> None:
        self._tmp = None
        if root is None:
            self._tmp = tempfile.mkdtemp(prefix="envy-bench-")
            root = Path(self._tmp)
        self.root = Path(root)
        self.keep = keep
        self.share = Path(share) if share is not None else self.root / "share"
        self.user = user
        self.layout = ShareLayout(self.share)
        self.env = {**os.environ, "ENVY_STATE_DIR": str(self.root / "state"),
                    "ENVY_CONFIG_DIR": str(self.root / "config"), "USER": user, "LOGNAME": user,
                    "USERNAME": user, "PYTHONUNBUFFERED": "1"}
        for key in ("ENVY_LOG_DIR", "ENVY_SHARE", "ENVY_POLICY"):
            self.env.pop(key, None)
        # The agents run in the temp folder: they import this checkout's envy, as this script does.
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        self.agents: dict[str, subprocess.Popen] = {}
        (self.root / "out").mkdir(parents=True, exist_ok=True)
        if not self.layout.sentinel.exists():
            init_share(self.share, user, fs=REAL_FS)

    # -- agents -------------------------------------------------------------------------
    def agent_argv(self, host: str, settings: Mapping[str, Any] | None = None, share: Path | None = None) -> list[str]:
        argv = [sys.executable, "-m", "envy", "agent", "--share", str(share or self.share), "--host", host]
        # Scenes beside the share (a "workstation" folder) are this farm's project root, as in tests/farm.py.
        for key, value in {"project_roots": [str(self.root)], **(settings or {})}.items():
            argv += ["--set", f"{key}={json.dumps(value)}"]
        return argv

    def start_agent(self, host: str, settings: Mapping[str, Any] | None = None, *,
                    prefix: Sequence[str] = (), share: Path | None = None) -> subprocess.Popen:
        """Start ``python -m envy agent`` (``prefix``: e.g. strace and its options)."""
        argv = [*prefix, *self.agent_argv(host, settings, share)]
        with open(self.root / "out" / f"{host}.out", "ab") as out:
            popen = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.root)
        self.agents[host] = popen
        return popen

    def status(self, host: str) -> dict | None:
        try:
            return json.loads(self.layout.status_file(host).read_text())
        except (OSError, ValueError):
            return None

    def ready(self, host: str, pid: int | None = None) -> bool:
        st = self.status(host)
        if not st:
            return False
        return st.get("state") not in (None, "starting") and (pid is None or st.get("pid") == pid)

    def wait_ready(self, hosts: Iterable[str], timeout: float = 120, pids: Mapping[str, int] | None = None) -> None:
        hosts = list(hosts)
        for host in hosts:
            popen = self.agents.get(host)
            pid = (pids or {}).get(host) or None
            def up(host: str = host, popen: subprocess.Popen | None = popen, pid: int | None = pid) -> bool:
                if popen is not None and popen.poll() is not None:
                    raise RuntimeError(f"agent {host} exited with {popen.returncode}: {self.output(host)[-2000:]}")
                return self.ready(host, pid)
            wait_for(up, timeout, f"agent {host} to heartbeat")

    def log_path(self, host: str) -> Path:
        return self.layout.host_logs(host) / "agent.log"

    def output(self, host: str) -> str:
        path = self.root / "out" / f"{host}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def send(self, line: str) -> Instruction:
        return InstructionSender(self.layout, 600, fs=REAL_FS).send([line]).sent[0]

    def descendants(self) -> list[psutil.Process]:
        procs = []
        for popen in self.agents.values():
            try:
                procs += psutil.Process(popen.pid).children(recursive=True)
            except psutil.Error:
                pass
        return procs

    def kill9(self, host: str) -> float:
        """SIGKILL one agent; returns the wall-clock time of the kill."""
        popen = self.agents[host]
        popen.send_signal(signal.SIGKILL)
        t = time.time()
        popen.wait(timeout=10)
        return t

    def stop_agents(self) -> None:
        """Terminate our agents, then kill whatever they started (renders live in their own sessions)."""
        children = self.descendants()
        for popen in self.agents.values():
            if popen.poll() is None:
                popen.terminate()
        for popen in self.agents.values():
            try:
                popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=5)
        for proc in children:
            try:
                proc.kill()
            except psutil.Error:
                pass

    def close(self) -> None:
        self.stop_agents()
        if self._tmp and not self.keep:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> BenchFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_frames(folder: Path, count: int, extension: str = ".frame", stem: str = "shot") -> list[Path]:
    """``count`` tiny per-frame scene files ``stem.0001.frame`` ... in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(count)))
    paths = []
    for i in range(1, count + 1):
        p = folder / f"{stem}.{i:0{width}d}{extension}"
        p.write_bytes(b"frame\n")
        paths.append(p)
    return paths


def submit_frames(layout: ShareLayout, folder: Path, profile_file: Path, name: str | None = None) -> Any:
    """Register ``folder`` as a frames job rendered by the profile in ``profile_file``."""
    from envy.render.profiles import load_profiles
    from envy.render.submit import SubmitRequest, submit

    return submit(layout, SubmitRequest(str(folder), name=name), load_profiles([profile_file]), fs=REAL_FS)


def netshare_module() -> Any:
    """tests/netshare.py (the loopback sshfs share), or None when it cannot run here."""
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    try:
        import netshare  # type: ignore[import-not-found]
    except Exception as exc:  # pytest missing, ...
        print(f"(no network share: {exc})")
        return None
    reason = netshare.netshare_available()
    if reason is not None:
        print(f"(no network share: {reason})")
        return None
    return netshare


def share_module(kind: str) -> Any:
    """A context-manager factory ``(root, mounts=N)`` for a real network share of ``kind``
    (``sshfs`` with default caching, or ``samba`` through smbnetfs), or None when it cannot run here."""
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    try:
        if kind == "sshfs":
            import netshare as mod  # type: ignore[import-not-found]

            reason, factory = mod.netshare_available(), mod.net_share
        else:
            import smbshare as mod  # type: ignore[import-not-found]

            reason, factory = mod.smbshare_available(), mod.samba_share
    except Exception as exc:  # pytest missing, ...
        print(f"(no {kind} share: {exc})")
        return None
    if reason is not None:
        print(f"(no {kind} share: {reason})")
        return None
    return factory
