"""The web monitor's cost on the share, against ``envy-io monitor``, and how fast a finished frame shows.

Targets (issue 12): share operations per minute with the page open on a
20-host farm at most those of one ``envy-io monitor``; a finished frame's
thumbnail on the page within poll interval + 1 s of the frame completing.

Method. 20 real agents (default settings, one worker each) render a frames
job whose stand-in renderer (bash: sleep, then copy a prepared 640x480 PNG
to the output; say so: not a real renderer) takes ``--frame-seconds``
per frame, so frames finish all the time and every status file changes at
every heartbeat. At the same time, each traced by ``strace -f -p`` attached
once it runs (start-up is not counted), as in idle_cost.py (every syscall on
a path or descriptor under the share counts as one operation):

* ``envy-io monitor`` (default 1 s refresh), its output to /dev/null;
* ``envy-io web --no-browser`` (default 1 s poll) with three tabs open: two on
  the jobs page and one on the job's page (server-sent event streams), the job
  page also fetching each thumbnail once, as a browser does.

The job-page stream also records, per frame, when the page first heard it was
done and when it first had its thumbnail; both are compared with the agent's
"completed FRAME" log line (same machine clock).

    python benchmarks/web.py [--quick] [--minutes M] [--hosts N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import benchlib
from idle_cost import STRACE, TRACE_CLASSES, count_ops

WARMUP_S = 10.0


def png(width: int = 640, height: int = 480) -> bytes:
    """A gradient PNG made without Pillow (the stand-in renderer copies it as each frame's image)."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 128))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b"")


def copy_profile(path: Path, image: Path, seconds: float) -> Path:
    import yaml

    script = f'sleep {seconds:g}; cp "{image}" "$2"'
    doc = {
        "name": "benchpng",
        "description": "benchmark stand-in: sleeps, then copies a prepared PNG",
        "extensions": [".frame"],
        "executables": {"linux": ["/bin/bash"], "darwin": ["/bin/bash"], "windows": ["bash"]},
        "argv": ["-c", script, "envy-frame", "{scene}"],
        "output_arg": ["{output}"],
        "output_ext": ".png",
        "ok_exit_codes": [0],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def old_frames(folder: Path, count: int) -> Path:
    """A finished job's folder: every frame file renamed done, as agents leave them."""
    for path in benchlib.make_frames(folder, count):
        path.rename(path.with_name(path.name.replace(".frame", ".envy~done~lab1-01~0badc0de.frame")))
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PageTab(threading.Thread):
    """One open tab: an event stream; on the job page also each thumbnail fetched once."""

    def __init__(self, url: str, job_id: str | None, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.job_id, self.stop_event = url, job_id, stop
        self.done_at: dict[str, float] = {}
        self.thumb_at: dict[str, float] = {}
        self.events = 0
        self.error: str | None = None

    def run(self) -> None:
        import httpx

        query = f"?job={self.job_id}" if self.job_id else ""
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(30, read=None)) as client,
                client.stream("GET", f"{self.url}/api/events{query}") as stream,
            ):
                kind = ""
                for line in stream.iter_lines():
                    if self.stop_event.is_set():
                        return
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        self.events += 1
                        if kind == "job":
                            self.seen(client, json.loads(line[6:]))
        except Exception as exc:  # noqa: BLE001 - reported in the results
            if not self.stop_event.is_set():
                self.error = repr(exc)

    def seen(self, client, detail: dict) -> None:  # type: ignore[no-untyped-def]
        now = time.time()
        for item in detail["items"]:
            if item["state"] == "done":
                self.done_at.setdefault(item["base"], now)
            if item["thumb"] and item["base"] not in self.thumb_at:
                client.get(f"{self.url}/thumbs/{self.job_id}/{item['base']}.jpg")
                self.thumb_at[item["base"]] = time.time()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="measure for 1 minute instead of 2")
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--frame-seconds", type=float, default=4.0)
    parser.add_argument(
        "--finished-jobs",
        type=int,
        default=10,
        help="finished jobs of 100 frames on the share too, as a lab's share keeps them (default 10)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the farm's folder (to read agents' logs)")
    benchlib.add_load_args(parser)
    args = parser.parse_args()
    benchlib.begin(args)
    minutes = args.minutes or (1.0 if args.quick else 2.0)
    frames_needed = int(args.hosts * (minutes * 60 + WARMUP_S + 60) / args.frame_seconds) + args.hosts

    farm = benchlib.BenchFarm(keep=args.keep)
    print(f"farm folder: {farm.root}")
    farm.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(benchlib.ROOT), os.environ.get("PYTHONPATH")]))
    stop = threading.Event()
    procs: list[subprocess.Popen] = []
    try:
        image = farm.root / "frame.png"
        image.write_bytes(png())
        profile = copy_profile(farm.root / "benchpng.yaml", image, args.frame_seconds)
        folder = farm.share / "projects" / "shot010"
        benchlib.make_frames(folder, frames_needed)
        from envy.render.profiles import load_profiles
        from envy.render.submit import SubmitRequest, submit
        from envy.share.fs import REAL_FS

        out_dir = farm.share / "projects" / "out"
        job = submit(
            farm.layout,
            SubmitRequest(str(folder), name="shot010", output=str(out_dir)),
            load_profiles([profile]),
            REAL_FS,
        )
        for n in range(1, args.finished_jobs + 1):
            old = farm.share / "projects" / f"old{n:03d}"
            submit(
                farm.layout,
                SubmitRequest(str(old_frames(old, 100)), name=f"old{n:03d}"),
                load_profiles([profile]),
                REAL_FS,
            )
        hosts = [f"lab7-{i:02d}" for i in range(1, args.hosts + 1)]
        for host in hosts:
            farm.start_agent(host, {"profiles": [str(profile)]})
        farm.wait_ready(hosts, timeout=300)
        farm.send("lab7 * render()")

        env = {**farm.env, "ENVY_SHARE": str(farm.share)}
        io = [sys.executable, "-m", "envy_io.cli", "--share", str(farm.share)]
        traces = {"monitor": farm.root / "monitor.strace", "web": farm.root / "web.strace"}
        port = free_port()
        commands = {"monitor": [*io, "monitor"], "web": [*io, "web", "--no-browser", "--port", str(port)]}
        viewers = {}
        for name, argv in commands.items():
            with open(farm.root / f"{name}.err", "wb") as err:
                viewers[name] = subprocess.Popen(
                    argv, env=env, cwd=benchlib.ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
                )
        procs += viewers.values()
        url = f"http://127.0.0.1:{port}"
        import httpx

        try:
            benchlib.wait_for(
                lambda: _up(httpx, url) or viewers["web"].poll() is not None, 300, "the web monitor to answer", 0.5
            )
        finally:
            if viewers["web"].poll() is not None:
                print((farm.root / "web.err").read_text(errors="replace")[-3000:])
        tabs = [PageTab(url, None, stop), PageTab(url, None, stop), PageTab(url, job.id, stop)]
        for tab in tabs:
            tab.start()
        # strace attaches to the running viewers (every thread, -f), so their start-up is not measured.
        tracers = [
            subprocess.Popen(
                [
                    STRACE,
                    "-f",
                    "-ttt",
                    "-y",
                    "-qq",
                    "-e",
                    f"trace={TRACE_CLASSES}",
                    "-e",
                    "signal=none",
                    "-o",
                    str(traces[name]),
                    "-p",
                    str(viewers[name].pid),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name in commands
        ]
        start = time.time() + WARMUP_S
        end = start + minutes * 60
        print(
            f"{args.hosts} agents rendering; monitor and web (3 tabs) under strace; measuring {minutes:g} min "
            f"after a {WARMUP_S:g} s warm-up ..."
        )
        benchlib.wait_for(lambda: time.time() > end + 2, minutes * 60 + WARMUP_S + 60, "the window to end", 1.0)
        stop.set()
        for tracer in tracers:
            tracer.send_signal(signal.SIGINT)  # detach, leaving the viewer running
            tracer.wait(timeout=30)
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        farm.stop_agents()

        runs = {}
        for name, trace in traces.items():
            ops = count_ops(trace, farm.share, start, end)
            runs[name] = {
                "ops_per_min": round(ops["total"] / minutes, 1),
                "by_operation": ops["by_operation"],
                "top_targets": dict(list(ops["by_target"].items())[:12]),
            }
        completed: dict[str, float] = {}
        for host in hosts:
            for t, line in benchlib.log_events(farm.log_path(host), "completed "):
                base = line.split("completed ", 1)[1].split(" of ", 1)[0]
                completed.setdefault(base, t)
        page = tabs[2]
        in_window = [b for b, t in completed.items() if start <= t < end]
        to_done = [page.done_at[b] - completed[b] for b in in_window if b in page.done_at]
        to_thumb = [page.thumb_at[b] - completed[b] for b in in_window if b in page.thumb_at]
        frames_done = len(in_window)
    finally:
        stop.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
        farm.close()

    monitor, web = runs["monitor"]["ops_per_min"], runs["web"]["ops_per_min"]
    cost_ok = web <= monitor
    interval = 1.0
    thumb_ok = bool(to_thumb) and max(to_thumb) <= interval + 1.0
    print(
        f"\nshare operations per minute: envy-io monitor {monitor:.1f}, envy-io web with 3 tabs {web:.1f} "
        f"({web / monitor:.2f} x): {benchlib.verdict(cost_ok)}"
    )
    for name, r in runs.items():
        print(f"  {name}: {r['by_operation']}")
        for target, n in r["top_targets"].items():
            print(f"      {n / minutes:7.1f}/min  {target}")
    print(
        f"frames completed in the window: {frames_done}; seen done on the page: {len(to_done)}, "
        f"with a thumbnail: {len(to_thumb)}"
    )
    if to_done:
        print(f"completed -> done on the page: {benchlib.summary_stats(to_done)}")
    if to_thumb:
        print(
            f"completed -> thumbnail on the page: {benchlib.summary_stats(to_thumb)} "
            f"(target <= {interval + 1.0:g} s): {benchlib.verdict(thumb_ok)}"
        )
    else:
        print("no thumbnails reached the page (does the agent write them? see docs/web-monitor.md)")
    path = benchlib.save_results(
        "web",
        {
            "hosts": args.hosts,
            "frame_seconds": args.frame_seconds,
            "finished_jobs": args.finished_jobs,
            "minutes": minutes,
            "warmup_s": WARMUP_S,
            "tabs": {"jobs_page": 2, "job_page": 1},
            "runs": runs,
            "frames_completed": frames_done,
            "completed_to_done_on_page_s": benchlib.summary_stats(to_done) if to_done else None,
            "completed_to_thumbnail_on_page_s": benchlib.summary_stats(to_thumb) if to_thumb else None,
            "tab_errors": [t.error for t in tabs if t.error],
            "target": "web ops/min <= monitor ops/min; thumbnail on the page <= poll interval + 1 s after completion",
            "pass": cost_ok and thumb_ok,
        },
    )
    print(f"results: {path}")
    return 0 if cost_ok and thumb_ok else 1


def _up(httpx, url: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        return httpx.get(url + "/api/snapshot", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
