"""Idle network cost: filesystem operations on the share per idle agent per minute.

Target (issue 2): at default settings, at most 1.2 x the minimum the settings
imply, and independent of how many hosts, jobs and frames the share holds.

Method. One agent at default settings runs under ``strace -f`` (every thread)
with ``-y`` (file descriptors printed with the path they refer to) tracing
every syscall that takes a path or a file descriptor (``%file,%desc`` plus
the stat families). After a warm-up that skips start-up (imports, config, user
functions, the first status write), each syscall in the measuring window
whose path, or whose descriptor's path, lies under the share is one
*operation*: on a network file system each is (at least) one request that may
cross the network (stat -> GETATTR, openat -> LOOKUP/OPEN, write -> WRITE,
fsync -> COMMIT, close -> CLOSE/flush, rename -> RENAME). Syscalls on local
files (the ledger in the state folder, Python's own files, the console log)
and on non-file descriptors (inotify, pipes, eventfd) are not counted.

The minimum the settings imply: one fresh read of the instruction file per
poll, five syscalls (openat, statx, fstat, read, close; four requests to the
file server, the fstat being answered from what statx fetched), 60 / (poll_interval
x (1 - poll_jitter / 2)) polls per minute (the jitter only makes polls sooner,
uniformly up to poll_jitter, so the mean interval is that), plus one status
write per heartbeat (60 / heartbeat per minute), a status write being the five
operations an atomic publish needs: open a temp file, write, fsync, close,
rename. Defaults: 31.6 x 5 + 12 x 5 = 218 (with the symmetric jitter before
it: 30 x 5 + 12 x 5 = 210; before issue 14 a poll was one cached stat: 30 + 60 = 90).

The same measurement runs, at the same time, on an empty share and on one
holding 50 other agents' status files, 20 jobs and 10,000 frame files.

    python benchmarks/idle_cost.py [--quick] [--minutes M]
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import time
from pathlib import Path

import benchlib
from envy.config import Config
from envy.protocol.status import AgentStatus, write_status
from envy.share.fs import REAL_FS

STRACE = shutil.which("strace") or "/usr/bin/strace"
TRACE_CLASSES = "%file,%desc,%stat,%lstat,%fstat,%statfs"
WARMUP_S = 15.0
OP_SYSCALLS = ("stat", "open", "read", "write", "fsync", "close", "rename")
# One poll since issue 14 is a fresh read of instructions.txt (envy/share/fresh.py):
# openat, statx (attributes fetched from the server), fstat (answered by the kernel
# from what statx just fetched: no request), read, close.
OPS_PER_POLL = 5

_LINE_RE = re.compile(r"^(?P<pid>\d+)\s+(?P<t>\d+\.\d+)\s+(?:<\.\.\. )?(?P<call>[a-z0-9_]+)")


def implied_minimum(cfg: Config) -> dict[str, float]:
    polls = 60.0 / (cfg.poll_interval * (1 - cfg.poll_jitter / 2))
    beats = 60.0 / cfg.heartbeat
    return {"polls_per_min": polls, "heartbeats_per_min": beats, "ops_per_poll": OPS_PER_POLL,
            "ops_per_status_write": 5, "ops_per_min": polls * OPS_PER_POLL + beats * 5}


def populate(farm: benchlib.BenchFarm, hosts: int = 50, jobs: int = 20, frames: int = 10_000) -> dict[str, int]:
    """Other agents' status files, jobs and frame files, as a busy farm's share holds them."""
    for i in range(1, hosts + 1):
        status = AgentStatus(host=f"lab9-{i:02d}", nonce=f"{i:08x}", counter=i * 7, state="rendering",
                             pid=10_000 + i, user="someone", work="shot010 frame 42")
        write_status(farm.layout, status, fs=REAL_FS)
    profile = benchlib.sleep_profile(farm.root / "benchframe.yaml", 1)
    per_job = frames // jobs
    for j in range(1, jobs + 1):
        folder = farm.share / "projects" / f"shot{j:03d}"
        benchlib.make_frames(folder, per_job)
        benchlib.submit_frames(farm.layout, folder, profile, name=f"shot{j:03d}")
    count = sum(1 for _ in (farm.share / "projects").rglob("*.frame"))
    return {"status_files": hosts, "jobs": jobs, "frame_files": count}


def classify(call: str) -> str:
    if "stat" in call:
        return "stat"
    if call.startswith("open") or call == "creat":
        return "open"
    if call in ("read", "pread64", "readv"):
        return "read"
    if call in ("write", "pwrite64", "writev"):
        return "write"
    if call in ("fsync", "fdatasync"):
        return "fsync"
    if call == "close":
        return "close"
    if call.startswith("rename"):
        return "rename"
    return call


def target_of(line: str, share: str) -> str:
    """The share-relative path an operation touched, with temp names folded together."""
    i = line.find(share)
    rest = line[i + len(share):]
    m = re.match(r"[^\">,)]*", rest)
    path = (m.group(0) if m else rest).lstrip("/") or "."
    return re.sub(r"\.envy-tmp-[0-9a-f]{12}$", ".envy-tmp-*", path)


def count_ops(trace: Path, share: Path, start: float, end: float) -> dict:
    """Operations on the share between ``start`` and ``end`` (wall clock, as strace -ttt prints)."""
    share_s = str(share)
    on_share = re.compile(re.escape(share_s) + r'(?=[/">])')
    by_call: collections.Counter[str] = collections.Counter()
    by_target: collections.Counter[str] = collections.Counter()
    syscalls: collections.Counter[str] = collections.Counter()
    total = 0
    for line in trace.read_text(errors="replace").splitlines():
        if "resumed>" in line:  # the second half of a syscall already counted at its start
            continue
        m = _LINE_RE.match(line)
        if not m or not start <= float(m["t"]) < end or not on_share.search(line):
            continue
        total += 1
        by_call[classify(m["call"])] += 1
        syscalls[m["call"]] += 1
        by_target[f"{classify(m['call'])} {target_of(line, share_s)}"] += 1
    return {"total": total, "by_operation": dict(by_call), "by_syscall": dict(syscalls),
            "by_target": dict(by_target.most_common())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="measure for 1 minute instead of 3")
    parser.add_argument("--minutes", type=float, default=None, help="measuring window (default 3)")
    benchlib.add_load_args(parser)
    args = parser.parse_args()
    benchlib.begin(args)
    minutes = args.minutes or (1.0 if args.quick else 3.0)

    cfg = Config()  # the defaults: the benchmark passes no --set
    minimum = implied_minimum(cfg)
    farms = {"empty": benchlib.BenchFarm(), "populated": benchlib.BenchFarm()}
    try:
        contents = {"empty": {"status_files": 0, "jobs": 0, "frame_files": 0},
                    "populated": populate(farms["populated"])}
        traces = {}
        for name, farm in farms.items():
            traces[name] = farm.root / "agent.strace"
            prefix = [STRACE, "-f", "-ttt", "-y", "-qq", "-e", f"trace={TRACE_CLASSES}", "-e", "signal=none",
                      "-o", str(traces[name])]
            farm.start_agent("lab1-01", prefix=prefix)
        for farm in farms.values():
            farm.wait_ready(["lab1-01"], timeout=120)
        start = time.time() + WARMUP_S
        end = start + minutes * 60
        print(f"agents idle at default settings; measuring {minutes:g} min after a {WARMUP_S:g} s warm-up ...")
        benchlib.wait_for(lambda: time.time() > end + 2, minutes * 60 + WARMUP_S + 30, "the window to end", 1.0)
        for farm in farms.values():
            farm.stop_agents()
        runs = {}
        for name, farm in farms.items():
            ops = count_ops(traces[name], farm.share, start, end)
            per_min = ops["total"] / minutes
            runs[name] = {"share_contents": contents[name], "ops": ops, "ops_per_min": round(per_min, 1),
                          "ratio_to_minimum": round(per_min / minimum["ops_per_min"], 3)}
    finally:
        for farm in farms.values():
            farm.close()

    ratios = [r["ratio_to_minimum"] for r in runs.values()]
    independent = abs(runs["populated"]["ops_per_min"] - runs["empty"]["ops_per_min"]) <= 0.05 * minimum["ops_per_min"]
    ok = max(ratios) <= 1.2 and independent
    print(f"\nminimum implied by the settings: {minimum['polls_per_min']:g} polls x {OPS_PER_POLL} + "
          f"{minimum['heartbeats_per_min']:g} status writes x 5 = {minimum['ops_per_min']:g} ops/min")
    for name, r in runs.items():
        c = r["share_contents"]
        print(f"{name:10s} ({c['status_files']} status files, {c['jobs']} jobs, {c['frame_files']} frames): "
              f"{r['ops_per_min']:6.1f} ops/min = {r['ratio_to_minimum']:.3f} x minimum  {r['ops']['by_operation']}")
        for target, n in r["ops"]["by_target"].items():
            print(f"    {n / minutes:6.1f}/min  {target}")
    print(f"target <= 1.2 x minimum and independent of share contents: {benchlib.verdict(ok)}")
    path = benchlib.save_results("idle_cost", {
        "settings": {"poll_interval": cfg.poll_interval, "poll_jitter": cfg.poll_jitter, "heartbeat": cfg.heartbeat},
        "minutes": minutes, "warmup_s": WARMUP_S, "strace_classes": TRACE_CLASSES,
        "minimum": minimum, "runs": runs, "independent_of_contents": independent,
        "target": "ops/min <= 1.2 x minimum; same with an empty and a populated share", "pass": ok,
    })
    print(f"results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
