"""``envy demo``: a local farm on this machine that renders real frames.

A local folder plays the share; three agents run as subprocesses with
lab-like names. The demo fans a command out to them and shows each answer,
submits a bundled animated POV-Ray scene as per-frame files, shows the
monitor until every frame is done, and prints where the frames are. Without
POV-Ray it says how to install it and uses Envy's small built-in renderer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from envy.platform.host import user_name
from envy.protocol.sender import InstructionSender
from envy.render.jobs import Job
from envy.render.profiles import load_profiles
from envy.render.remap import PathRemap
from envy.render.submit import SubmitRequest, submit
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share
from envy.waiting import WaitTimeout, wait_for

DEMO_SETTINGS = {"heartbeat": 1.0, "dead_after": 6.0, "poll_interval": 0.5}
INSTALL_POVRAY = {
    "linux": "sudo apt-get install povray   (Debian/Ubuntu)",
    "darwin": "brew install povray",
    "windows": "download POV-Ray 3.7 from povray.org and install it",
}


def say(text: str) -> None:
    print(f"[envy demo] {text}", flush=True)


def write_frames(folder: Path, frames: int, renderer: str) -> None:
    """Per-frame scene files of the bouncing-ball shot (clock 0..1 across the shot)."""
    folder.mkdir(parents=True, exist_ok=True)
    if renderer == "povray":
        scene = resources.files("envy") / "demo_scene" / "scene.inc"
        (folder / "scene.inc").write_text(scene.read_text(encoding="utf-8"), encoding="utf-8")
    for i in range(1, frames + 1):
        clock = (i - 1) / max(1, frames - 1)
        if renderer == "povray":
            text = (f"// frame {i}: the shot lives in scene.inc, included by a relative path\n"
                    f'#declare Clock = {clock:.6f};\n#include "scene.inc"\n')
            (folder / f"shot010.{i:04d}.pov").write_text(text, encoding="utf-8")
        else:
            scene_values = {"clock": clock, "width": 320, "height": 240}
            (folder / f"shot010.{i:04d}.envyscene").write_text(json.dumps(scene_values))


def choose_renderer(requested: str) -> str:
    if requested == "builtin":
        return "envy-mini"
    found = shutil.which("povray")
    if found:
        return "povray"
    if requested == "povray":
        how = INSTALL_POVRAY.get(sys.platform if sys.platform in INSTALL_POVRAY else "linux", "")
        raise SystemExit("envy demo: povray is not installed: " + how)
    from envy.platform.host import os_name

    say(f"POV-Ray is not installed ({INSTALL_POVRAY[os_name()]}); using Envy's built-in renderer instead.")
    return "envy-mini"


def start_agents(root: Path, share: Path, hosts: list[str], renderer: str) -> list[subprocess.Popen]:
    env = {**os.environ, "ENVY_STATE_DIR": str(root / "state"), "ENVY_CONFIG_DIR": str(root / "config")}
    env.pop("ENVY_LOG_DIR", None)
    procs = []
    for host in hosts:
        argv = [sys.executable, "-m", "envy", "agent", "--share", str(share), "--host", host]
        for key, value in DEMO_SETTINGS.items():
            argv += ["--set", f"{key}={value}"]
        # The shot lives beside the share, as a student's project folder does: the demo's own
        # folder is its project root (agents refuse job paths outside the share and project_roots).
        argv += ["--set", f"project_roots={json.dumps([str(root)])}"]
        out = open(root / f"{host}.console.log", "ab")
        procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        out.close()
    return procs


def wait_for_prints(layout: ShareLayout, hosts: list[str], text: str, timeout: float) -> dict[str, str]:
    """Each host's log line for ``print(text)``, waiting until all have answered."""
    answers: dict[str, str] = {}

    def everyone_answered() -> bool:
        for host in hosts:
            log = layout.host_logs(host) / "agent.log"
            if host not in answers and log.exists():
                for line in log.read_text(errors="replace").splitlines():
                    if f"print: {text}" in line:
                        answers[host] = line
        return len(answers) == len(hosts)

    try:
        wait_for(everyone_answered, timeout, f"every agent to print {text!r}", 0.2)
    except WaitTimeout:
        pass  # the caller names the hosts that did not answer
    return answers


def run_demo(args: argparse.Namespace) -> int:
    from envy_io.monitor import MonitorModel, run_monitor

    root = Path(args.dir).resolve()
    share = root / "share"
    if share.exists():
        shutil.rmtree(share)  # a fresh farm each run; the demo folder is the demo's own
    shutil.rmtree(root / "shot010", ignore_errors=True)
    renderer = choose_renderer(args.renderer)
    init_share(share, user_name(), fs=REAL_FS)
    layout = ShareLayout(share)
    hosts = [f"lab1-{i:02d}" for i in range(1, args.agents + 1)]
    say(f"share: {share}")
    say(f"starting {len(hosts)} agents: {', '.join(hosts)}")
    procs = start_agents(root, share, hosts, renderer)
    sender = InstructionSender(layout, 600, fs=REAL_FS)
    try:
        sender.send(["lab1 * print('hello from', 'the demo')"])
        say("sent:  lab1 * print('hello from', 'the demo')")
        answers = wait_for_prints(layout, hosts, "hello from the demo", 30)
        for host in hosts:
            when = f"  ({answers[host].split(' ', 2)[1]})" if host in answers else ""
            say(f"  {host}: {'ran it' if host in answers else 'NO ANSWER'}{when}")
        if len(answers) < len(hosts):
            say("not every agent answered; see the logs in " + str(layout.logs_dir))
            return 1
        frames_dir = root / "shot010" / "frames"
        write_frames(frames_dir, args.frames, renderer)
        job: Job = submit(
            layout, SubmitRequest(str(frames_dir), renderer=renderer, name="shot010"), load_profiles(), fs=REAL_FS
        )
        say(f"submitted job {job.id}: {args.frames} frames of shot010 ({renderer})")
        sender.send(["lab1 * render()"])
        say("sent:  lab1 * render()")
        model = MonitorModel(layout, DEMO_SETTINGS["dead_after"], PathRemap.parse([]), fs=REAL_FS)
        if args.no_monitor or not sys.stdout.isatty():
            run_monitor(model, interval=2.0, until_done=True)
        else:
            run_monitor(model, interval=0.5, until_done=True)
        pngs = sorted(frames_dir.glob("*.png"))
        say(f"done: {len(pngs)} frames in {frames_dir}")
        say(f"logs: {layout.logs_dir}   per-frame logs: {layout.jobs_dir / job.id / 'logs'}")
        return 0 if len(pngs) == args.frames else 1
    finally:
        try:
            sender.send(["lab1 * quit()"])
        except Exception:
            pass
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.terminate()
