"""Cost of jobs waiting for another (``--after``): share operations per minute of one agent's gate.

Target (issue 11 §5): an agent does not re-read the jobs a job waits for on
every claim. With 20 jobs waiting for one active 2,000-frame job, and 4
workers asking for work every poll (0.3 s), the gate's share operations per
minute stay at what one dependency re-read every ``recheck`` seconds costs
(a job-file read plus one listing), whatever the number of waiting jobs:
<= 2 x 60 / 3 = 40 ShareFS calls a minute. Once the dependency is complete
it is never read again (0 a minute).

Method. In-process: the real ``DependencyGate`` and ``read_state`` on a real
share in a temporary folder, through a ShareFS that counts every call; the
gate's clock is a counter advanced 0.3 s per round, so ten simulated minutes
take a second. For comparison, the same rounds without the kept answers (a
read of every dependency on every claim).

    python benchmarks/dependency_gate.py [--minutes M]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path
from typing import Any

import benchlib
from envy.render.dependencies import DependencyGate, read_state
from envy.render.job_state import COMPLETE
from envy.render.jobs import Job, save_job
from envy.render.overview import work_folder
from envy.render.remap import PathRemap
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout, init_share

POLL_S = 0.3
WORKERS = 4
WAITING = 20
FRAMES = 2000
TARGET_PER_MIN = 40


class CountingFS(ShareFS):
    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def listdir(self, path: Any) -> list[str]:
        self.calls["listdir"] += 1
        return super().listdir(path)

    def read_bounded(self, path: Any, limit: int) -> bytes:
        self.calls["read"] += 1
        return super().read_bounded(path, limit)

    def read_bytes(self, path: Any) -> bytes:
        self.calls["read"] += 1
        return super().read_bytes(path)

    def stat(self, path: Any) -> Any:
        self.calls["stat"] += 1
        return super().stat(path)


def rounds(gate: DependencyGate, jobs: list[Job], clock: list[float], minutes: float) -> None:
    for _ in range(int(minutes * 60 / POLL_S)):
        clock[0] += POLL_S
        for _worker in range(WORKERS):
            for job in jobs:
                gate.blocked(job)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="simulated minutes (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envy-bench-deps-") as tmp:
        root = Path(tmp)
        layout = ShareLayout(root / "share")
        fs = CountingFS()
        init_share(layout.root, "bench", fs=fs)
        frames = root / "cache"
        benchlib.make_frames(frames, FRAMES, ".pov")
        dep = Job(id="20260101-000000-cache-0001", name="cache", kind="frames", renderer="povray",
                  source=str(frames), extensions=[".pov"])
        save_job(layout, dep, fs)
        waiting = [Job(id=f"20260101-000000-w{n}-0001", name=f"w{n}", kind="frames", renderer="povray",
                       source=str(root / f"w{n}"), extensions=[".pov"], after=[dep.id]) for n in range(WAITING)]

        def state_of(job_id: str) -> tuple[str, str]:
            return read_state(layout, fs, job_id, lambda j: work_folder(layout, j, PathRemap.parse([])))

        results: dict[str, float] = {}
        for label, recheck in (("gate", 3.0), ("no_kept_answers", 0.0)):
            clock = [0.0]
            gate = DependencyGate(state_of, lambda r=recheck: r, clock=lambda c=clock: c[0])  # type: ignore[misc]
            fs.calls.clear()
            rounds(gate, waiting, clock, args.minutes if label == "gate" else min(args.minutes, 0.05))
            minutes = args.minutes if label == "gate" else min(args.minutes, 0.05)
            results[f"{label}_calls_per_min"] = sum(fs.calls.values()) / minutes
        # The dependency completes: from then on, no reads at all.
        for name in list(p.name for p in frames.iterdir()):
            stem, ext = name.rsplit(".", 1)
            (frames / name).rename(frames / f"{stem}.envy~done~bench~0000abcd.{ext}")
        clock = [0.0]
        gate = DependencyGate(state_of, lambda: 3.0, clock=lambda: clock[0])
        assert state_of(dep.id)[1] == COMPLETE
        fs.calls.clear()
        rounds(gate, waiting, clock, 0.05)  # the first read sees it complete
        fs.calls.clear()
        rounds(gate, waiting, clock, args.minutes)
        results["complete_calls_per_min"] = sum(fs.calls.values()) / args.minutes
    ok = results["gate_calls_per_min"] <= TARGET_PER_MIN and results["complete_calls_per_min"] == 0
    print(f"{WAITING} jobs waiting for one {FRAMES}-frame job, {WORKERS} workers polling every {POLL_S} s:")
    print(f"  gate: {results['gate_calls_per_min']:.1f} share calls/min (target <= {TARGET_PER_MIN})")
    print(f"  without kept answers: {results['no_kept_answers_calls_per_min']:.0f} share calls/min")
    print(f"  once complete: {results['complete_calls_per_min']:.1f} share calls/min")
    print(benchlib.verdict(ok))
    benchlib.save_results("dependency_gate", {"waiting_jobs": WAITING, "frames": FRAMES, "workers": WORKERS,
                                              "poll_s": POLL_S, "target_per_min": TARGET_PER_MIN, **results})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
