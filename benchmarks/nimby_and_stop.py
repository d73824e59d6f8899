"""NIMBY and a clean stop: how fast the machine is given back to a person (issue 10).

Targets:

* **input -> render CPU at zero** (``when_in_use: pause``): at most the poll
  interval + 1 s.
* **SIGTERM -> agent gone and frame pending**: at most 3 s.

Method, input. A private X server (Xvfb), a real POV-Ray render, and the
NIMBY watcher (envy/nimby/watcher.py) with the real X11 idle reader and the
real process-tree control, polling at the agent's default poll interval
(2 s). Once POV-Ray is using CPU, ``xdotool`` moves the mouse; the script
samples the renderer's CPU time every 10 ms and records when it stopped
increasing for good (the last increase before the process is suspended).
The render is then resumed and killed; each run starts a fresh render.
Input arrives at a random moment of the poll cycle, so the spread shows the
poll's share.

Method, SIGTERM. One real agent (default settings apart from heartbeat 1 s,
poll interval 0.5 s) renders a real POV-Ray frame that takes far longer than
the run. Mid-frame it gets SIGTERM; measured from the signal: the agent
process has exited, and the frame file is pending again in the job folder
(the script lists the folder every 10 ms).

    python benchmarks/nimby_and_stop.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

import benchlib
from envy.demo import write_frames
from envy.nimby.control import ProcessTreeControl
from envy.nimby.settings import NimbySettings
from envy.nimby.watcher import NimbyWatcher
from envy.platform.idle import SystemMachineUse, X11InputIdle
from envy.render.claims import ItemPattern

POLL_S = 2.0  # the agent's default poll_interval
PAUSE_TARGET_S = POLL_S + 1.0
STOP_TARGET_S = 3.0
POVRAY = "/usr/bin/povray"
BIG = ["+W3200", "+H2400", "+A0.01", "+AM2", "+R6"]


class _Render:
    def __init__(self, pid: int, create_time: float) -> None:
        self.pid, self.create_time = pid, create_time


def _xvfb() -> tuple[subprocess.Popen, str]:
    number = random.randint(100, 900)
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = X11InputIdle(f":{number}")
    benchlib.wait_for(lambda: probe() is not None, 20, "Xvfb")
    probe.close()
    return server, f":{number}"


def pause_run(scenes: Path, display: str) -> float:
    settings = NimbySettings.from_values({"when_in_use": "pause", "idle_after": 10})
    idle = X11InputIdle(display)
    child = subprocess.Popen([POVRAY, "+Ishot010.0001.pov", *BIG, "-D", "+FN", "+O/dev/null"], cwd=scenes,
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = psutil.Process(child.pid)
    renders = [_Render(child.pid, proc.create_time())]
    control = ProcessTreeControl(lambda: renders, lambda _r: None, lambda: None, lambda _r: None)
    # The machine must count as idle before the render starts: fake a long-idle reading until the input.
    touched = [False]

    def input_idle() -> float | None:
        return idle() if touched[0] else 3600.0

    watcher = NimbyWatcher(settings, SystemMachineUse("bench-nobody", input_idle), control, POLL_S)
    watcher.start()
    try:
        benchlib.wait_for(lambda: proc.cpu_times().user > 0.5, 30, "POV-Ray to render")
        time.sleep(random.uniform(0, POLL_S))  # a random point of the poll cycle
        subprocess.run(["xdotool", "mousemove", str(random.randint(1, 600)), "40"],
                       env={**os.environ, "DISPLAY": display}, check=True)
        touched[0] = True
        t_input = time.monotonic()
        last_cpu, last_change = sum(proc.cpu_times()[:2]), t_input
        while proc.status() != psutil.STATUS_STOPPED:
            cpu = sum(proc.cpu_times()[:2])
            if cpu != last_cpu:
                last_cpu, last_change = cpu, time.monotonic()
            if time.monotonic() - t_input > 30:
                raise RuntimeError("the render was never suspended")
            time.sleep(0.01)
        # Suspended: the CPU time no longer moves (checked once more after a beat).
        if sum(proc.cpu_times()[:2]) != last_cpu:
            last_change = time.monotonic()
        return last_change - t_input
    finally:
        watcher.stop()
        child.kill()
        child.wait()
        idle.close()


def stop_run(index: int) -> dict[str, float]:
    with benchlib.BenchFarm() as farm:
        profile = farm.root / "povray-big.yaml"
        profile.write_text(
            "name: povray-big\nextensions: [.pov]\nexecutables: {linux: [/usr/bin/povray]}\n"
            f"argv: ['+I\"{{scene}}\"', {', '.join(BIG)}, -D, +V, +FN]\n"
            "output_arg: ['+O\"{output}\"']\noutput_ext: .png\noutput_next_to_scene: true\n"
            "progress: ['Rendered (?P<done>\\\\d+) of (?P<total>\\\\d+) pixels']\n")
        folder = farm.share / "projects" / f"stop{index}"
        write_frames(folder, 1, "povray")
        benchlib.submit_frames(farm.layout, folder, profile, name="stop")
        settings = {"heartbeat": 1, "poll_interval": 0.5, "dead_after": 5, "profiles": [str(profile)]}
        agent = farm.start_agent("stop-01", settings)
        farm.wait_ready(["stop-01"])
        farm.send("stop-01 render()")
        benchlib.wait_for(lambda: any(p.name() == "povray" and p.cpu_times().user > 0.5 for p in farm.descendants()),
                          60, "POV-Ray to render")
        pattern = ItemPattern([".pov"])

        def pending() -> bool:
            items = [pattern.parse(n) for n in os.listdir(folder)]
            return any(i is not None and i.state == "pending" for i in items)

        agent.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        gone_at = pending_at = None
        while gone_at is None or pending_at is None:
            now = time.monotonic()
            if gone_at is None and agent.poll() is not None:
                gone_at = now - t0
            if pending_at is None and pending():
                pending_at = now - t0
            if now - t0 > 30:
                raise RuntimeError(f"after 30 s: agent gone {gone_at}, frame pending {pending_at}")
            time.sleep(0.01)
        leftovers = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "povray"
                     and str(folder) in " ".join(p.cmdline())]
        return {"agent_gone_s": gone_at, "frame_pending_s": pending_at, "both_s": max(gone_at, pending_at),
                "renderers_left": float(len(leftovers))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of each instead of 10")
    parser.add_argument("--repeats", type=int, default=None)
    benchlib.add_load_args(parser)
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 10)
    benchlib.begin(args)
    import tempfile

    scenes = Path(tempfile.mkdtemp(prefix="envy-bench-nimby-"))
    write_frames(scenes, 1, "povray")
    server, display = _xvfb()
    try:
        pauses = [pause_run(scenes, display) for _ in range(repeats)]
    finally:
        server.terminate()
        server.wait()
    stops = [stop_run(i) for i in range(repeats)]
    both = [s["both_s"] for s in stops]
    result: dict[str, Any] = {
        "repeats": repeats,
        "input_to_cpu_zero_s": benchlib.summary_stats(pauses),
        "input_target_s": PAUSE_TARGET_S,
        "input_verdict": benchlib.verdict(max(pauses) <= PAUSE_TARGET_S),
        "sigterm_to_gone_and_pending_s": benchlib.summary_stats(both),
        "sigterm_agent_gone_s": benchlib.summary_stats([s["agent_gone_s"] for s in stops]),
        "sigterm_frame_pending_s": benchlib.summary_stats([s["frame_pending_s"] for s in stops]),
        "renderers_left": sum(s["renderers_left"] for s in stops),
        "sigterm_target_s": STOP_TARGET_S,
        "sigterm_verdict": benchlib.verdict(max(both) <= STOP_TARGET_S),
    }
    path = benchlib.save_results("nimby_and_stop", result)
    print(f"input -> render CPU zero: p50 {result['input_to_cpu_zero_s']['p50']:.2f} s, max {max(pauses):.2f} s "
          f"(target <= {PAUSE_TARGET_S:g} s) {result['input_verdict']}")
    print(f"SIGTERM -> agent gone and frame pending: p50 {result['sigterm_to_gone_and_pending_s']['p50']:.2f} s, "
          f"max {max(both):.2f} s (target <= {STOP_TARGET_S:g} s) {result['sigterm_verdict']}; "
          f"renderers left: {result['renderers_left']:g}")
    print(f"results: {path}")
    return 0 if result["input_verdict"] == result["sigterm_verdict"] == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
