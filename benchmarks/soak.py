"""Soak: 20 agents under random kill -9 and restart, rendering 500-frame jobs, for 30 minutes.

Target (issue 5): every frame completed exactly once, no orphaned child
process, agent memory flat.

Method. Real agents (``python -m envy agent``, heartbeat 1 s, poll 0.5 s,
dead_after 5 s, one worker each) on a local share in a temp folder. Frames
are rendered by the stand-in renderer of tests/test_faults_standin.py (a
Python script that sleeps ``--frame-seconds``, writes the output file and
leaves a marker per completed render; not a real renderer). One
``* render()`` starts the farm; render mode survives restarts, so a
restarted agent goes back to work by itself.

Chaos: every ``--kill-every`` seconds (random in the range) one random agent
gets SIGKILL, and comes back after ``--restart-after`` seconds (random in
the range) under the same host name, as a startup script would restart it.
``--steady`` agents are never killed: their memory is followed for the whole
run. Its renders keep running when an agent is killed (they run in their own
session); the agent started next on that host kills them.

Rounds: a 500-frame job is submitted; when every frame is done it is checked
and cancelled (``envy-io cancel``'s way), and the next one starts, until the
time is up. The last round is finished without chaos. Checks per round:

* done names: each frame exists exactly once, in state done;
* completions: each frame has exactly one ``completed <frame> of <job>`` line
  in all agent logs (a frame with none was completed by an agent killed
  between its rename and its log line: counted, not a failure); more than
  one is a duplicate;
* renders: markers per frame (> 1 means work lost to a kill, not a
  duplicate completion), and leftover temp outputs of killed renders.

Every ``--sample-every`` seconds the RSS of every live agent, and every
second a psutil scan for stand-in renders whose parent is not a live agent
(orphans). An orphan must be gone by the time its host's agent has been
restarted and has started up (``ORPHAN_GRACE_S`` after the restart); at the
end, after a graceful ``quit()``, no render may be left.

    python benchmarks/soak.py [--minutes 30] [--agents 20] [--frames 500]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import random
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psutil

import benchlib

if str(benchlib.TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(benchlib.TESTS_DIR))
from envy.render.claims import ItemPattern, sort_listing  # noqa: E402
from envy.render.jobs import save_job  # noqa: E402
from envy.render.profiles import load_profiles  # noqa: E402
from envy.render.submit import SubmitRequest, submit  # noqa: E402
from envy.share.fs import REAL_FS
from test_faults_standin import StandIn  # noqa: E402

SETTINGS = {"heartbeat": 1, "poll_interval": 0.5, "dead_after": 5, "workers": 1}
# After an agent is restarted, this long for it to start and kill its predecessor's renders.
ORPHAN_GRACE_S = 20.0
ORPHAN_SCAN_S = 1.0
# Memory: a steady agent may grow by at most this much from its first sample after warm-up.
MEMORY_GROWTH_LIMIT_MB = 5.0
WARMUP_S = 60.0
ROUND_TIMEOUT_S = 900.0


@dataclasses.dataclass
class Orphan:
    pid: int
    host: str | None  # from the claimed scene name
    first_seen: float
    last_seen: float
    agent_killed: float | None  # when its agent got SIGKILL
    gone: float | None = None  # first scan that no longer saw it

    def lived_after_kill(self) -> float | None:
        end = self.gone if self.gone is not None else self.last_seen
        return None if self.agent_killed is None else end - self.agent_killed


class Soak:
    def __init__(self, args: argparse.Namespace, farm: benchlib.BenchFarm) -> None:
        self.args = args
        self.farm = farm
        self.rng = random.Random(args.seed)
        self.standin = StandIn(farm.root / "standin").install()
        self.settings = {**SETTINGS, **self.standin.settings()}
        self.hosts = [f"soak-{i:02d}" for i in range(1, args.agents + 1)]
        self.steady = set(self.hosts[: args.steady])
        self.down: dict[str, float] = {}  # host -> when to restart it
        self.restarted_at: dict[str, float] = {}
        self.killed_at: dict[str, float] = {}
        self.kills = 0
        self.restarts = 0
        self.rss: dict[int, list[tuple[float, float, str]]] = collections.defaultdict(list)  # pid -> (t, MB, host)
        self.orphans: dict[int, Orphan] = {}
        self.leaked: list[dict[str, Any]] = []
        self.live_orphans: set[int] = set()
        self.t0 = time.monotonic()
        self.next_kill = self.t0

    # -- agents ---------------------------------------------------------------------------
    def start(self, host: str) -> None:
        self.farm.start_agent(host, self.settings)

    def alive_pids(self) -> dict[int, str]:
        return {p.pid: h for h, p in self.farm.agents.items() if p.poll() is None}

    def chaos(self, now: float) -> None:
        for host, when in list(self.down.items()):
            if now >= when:
                del self.down[host]
                self.start(host)
                self.restarts += 1
                self.restarted_at[host] = now
        if now < self.next_kill:
            return
        self.next_kill = now + self.rng.uniform(*self.args.kill_every)
        victims = [h for h in self.hosts if h not in self.steady and h not in self.down]
        if not victims or len(self.down) >= self.args.max_down:
            return
        host = self.rng.choice(victims)
        popen = self.farm.agents[host]
        if popen.poll() is None:
            popen.send_signal(signal.SIGKILL)
            popen.wait(timeout=10)
            self.kills += 1
            self.killed_at[host] = now
        self.down[host] = now + self.rng.uniform(*self.args.restart_after)

    # -- sampling -------------------------------------------------------------------------
    def sample_memory(self, now: float) -> None:
        for pid, host in self.alive_pids().items():
            try:
                self.rss[pid].append((now - self.t0, psutil.Process(pid).memory_info().rss / 2**20, host))
            except psutil.Error:
                pass

    def scan_orphans(self, now: float) -> None:
        alive = self.alive_pids()
        seen = set()
        script = str(self.standin.script)
        for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
            cmd = proc.info["cmdline"] or []
            if script not in cmd or proc.info["ppid"] in alive:
                continue
            seen.add(proc.pid)
            m = re.search(r"\.envy~work~\d+~([^~]+)~", " ".join(cmd))
            host = m.group(1) if m else None
            orphan = self.orphans.setdefault(proc.pid, Orphan(proc.pid, host, now, now, self.killed_at.get(host or "")))
            orphan.last_seen = now
            # Its agent is dead (else it would be the parent). Once that host's agent has
            # been back for ORPHAN_GRACE_S, its start-up should have killed the render.
            back_since = self.restarted_at.get(orphan.host or "")
            if orphan.host not in self.down and back_since is not None and now - back_since > ORPHAN_GRACE_S \
                    and proc.pid not in {x["pid"] for x in self.leaked}:
                self.leaked.append({"pid": proc.pid, "host": orphan.host, "age_s": round(now - orphan.first_seen, 1)})
        for orphan in self.orphans.values():
            if orphan.gone is None and orphan.pid not in seen:
                orphan.gone = now
        self.live_orphans = seen

    # -- rounds ---------------------------------------------------------------------------
    def run_round(self, index: int, chaos_until: float) -> dict[str, Any]:
        folder = self.farm.root / "projects" / f"round{index:03d}"
        bases = self.standin.make_frames(folder, self.args.frames, self.args.frame_seconds)
        name = f"soak-round-{index:03d}"
        job = submit(self.farm.layout, SubmitRequest(str(folder), output=str(folder / "out"), name=name),
                     load_profiles([self.standin.profile]), fs=REAL_FS)
        markers_before = self.standin.renders()
        kills_before = self.kills
        started = time.monotonic()
        pattern = ItemPattern([".frame"])
        next_sample = next_scan = 0.0
        while True:
            now = time.monotonic()
            if now < chaos_until:
                self.chaos(now)
            elif self.down:  # time is up: bring everyone back, no more kills
                for host in list(self.down):
                    self.down[host] = now
                self.chaos(now)
            if now >= next_sample:
                self.sample_memory(now)
                next_sample = now + self.args.sample_every
            if now >= next_scan:
                self.scan_orphans(now)
                next_scan = now + ORPHAN_SCAN_S
            listing = sort_listing([p.name for p in folder.iterdir()], pattern)
            if len(listing.done) == len(bases) or len(listing.done) + len(listing.failed) == len(bases):
                break
            if now - started > ROUND_TIMEOUT_S:
                print(f"  round {index}: timed out with {listing.counts()}")
                break
            time.sleep(0.2)
        took = time.monotonic() - started
        result = self.check_round(index, job, folder, bases, markers_before)
        result.update(took_s=round(took, 1), kills=self.kills - kills_before)
        save_job(self.farm.layout, dataclasses.replace(job, state="cancelled"), fs=REAL_FS)
        print(f"  round {index}: {result['done']}/{len(bases)} done in {took:.0f} s, {result['kills']} kills, "
              f"duplicates {result['duplicate_completions']}, completions missing from logs "
              f"{result['completed_without_log_line']}, wasted renders {result['wasted_renders']}: "
              f"{benchlib.verdict(result['ok'])}")
        return result

    def check_round(self, index: int, job: Any, folder: Path, bases: list[str],
                    markers_before: collections.Counter) -> dict[str, Any]:
        names = [p.name for p in folder.iterdir()]
        per_base: dict[str, list[str]] = collections.defaultdict(list)
        pattern = ItemPattern([".frame"])
        for n in names:
            item = pattern.parse(n)
            if item is not None:
                per_base[item.base].append(item.state)
        exactly_once_done = [b for b in bases if per_base.get(b) == ["done"]]
        completions = collections.Counter()
        needle = re.compile(rf"completed (\S+) of {re.escape(job.name)} in ")
        for host in self.hosts:
            for log in sorted(self.farm.log_path(host).parent.glob("agent.log*")):
                for m in needle.finditer(log.read_text(errors="replace")):
                    completions[m.group(1)] += 1
        renders = self.standin.renders() - markers_before
        out = folder / "out"
        outputs = [p.name for p in out.iterdir()] if out.exists() else []
        duplicates = {b: c for b, c in completions.items() if c > 1}
        no_line = [b for b in exactly_once_done if completions.get(b, 0) == 0]
        missing_outputs = [b for b in bases if f"{b}.png" not in outputs]
        ok = len(exactly_once_done) == len(bases) and not duplicates and not missing_outputs
        return {
            "round": index,
            "job": job.id,
            "frames": len(bases),
            "done": len(exactly_once_done),
            "not_done_once": {b: per_base.get(b, []) for b in bases if per_base.get(b) != ["done"]},
            "duplicate_completions": duplicates,
            "completed_without_log_line": len(no_line),
            "renders_completed": sum(renders.values()),
            "wasted_renders": sum(c - 1 for c in renders.values() if c > 1),
            "frames_never_rendered_to_the_end": len([b for b in bases if renders.get(b, 0) == 0]),
            "missing_outputs": missing_outputs[:20],
            "leftover_temp_outputs": len([o for o in outputs if ".envy~tmp~" in o]),
            "ok": ok,
        }

    # -- memory ---------------------------------------------------------------------------
    def memory_report(self) -> dict[str, Any]:
        warmup = min(WARMUP_S, self.args.minutes * 60 / 5)  # short runs: the first fifth
        steady = {}
        for pid, samples in self.rss.items():
            host = samples[0][2]
            if host not in self.steady:
                continue
            after = [s for s in samples if s[0] >= warmup] or samples
            first, last = after[0], after[-1]
            slope = _slope([(t, mb) for t, mb, _ in after])
            middle = after[len(after) // 2]
            steady[host] = {"pid": pid, "samples": len(samples), "first_mb": round(first[1], 1),
                            "growth_first_half_mb": round(middle[1] - first[1], 2),
                            "growth_second_half_mb": round(last[1] - middle[1], 2),
                            "series_s_mb": [[round(t), round(mb, 2)] for t, mb, _ in samples],
                            "first_at_s": round(first[0]), "last_mb": round(last[1], 1), "last_at_s": round(last[0]),
                            "max_mb": round(max(mb for _, mb, _ in samples), 1),
                            "growth_mb": round(last[1] - first[1], 2),
                            "slope_mb_per_10min": round(slope * 600, 3) if slope is not None else None}
        peaks = [max(mb for _, mb, _ in s) for s in self.rss.values()]
        ok = bool(steady) and all(s["growth_mb"] <= MEMORY_GROWTH_LIMIT_MB for s in steady.values())
        return {"steady_agents": steady, "all_agent_processes": len(self.rss),
                "peak_rss_mb": benchlib.summary_stats(peaks) if peaks else None, "ok": ok,
                "limit": f"each steady agent grows <= {MEMORY_GROWTH_LIMIT_MB:g} MB after {warmup:g} s of warm-up"}


def _slope(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return sum((t - mx) * (v - my) for t, v in points) / den if den else None


def leftover_renders(script: Path) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"]) if str(script) in (p.info["cmdline"] or [])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the chaos lasts (default 30)")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--steady", type=int, default=2, help="agents never killed, to follow memory (default 2)")
    parser.add_argument("--frames", type=int, default=500, help="frames per job (default 500)")
    parser.add_argument("--frame-seconds", type=float, default=2.0, help="stand-in render time per frame (default 2)")
    parser.add_argument("--kill-every", type=float, nargs=2, default=(2.0, 5.0), metavar=("MIN", "MAX"))
    parser.add_argument("--restart-after", type=float, nargs=2, default=(0.5, 3.0), metavar=("MIN", "MAX"))
    parser.add_argument("--max-down", type=int, default=3, help="at most this many agents down at once")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (its path is printed)")
    parser.add_argument("--results", default="soak", help="results file name in benchmarks/results (default soak)")
    benchlib.add_load_args(parser)
    args = parser.parse_args()
    args.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    benchlib.begin(args)
    print(f"soak: {args.agents} agents ({args.steady} never killed), {args.frames}-frame jobs of "
          f"{args.frame_seconds:g} s frames, kill -9 every {args.kill_every[0]:g}-{args.kill_every[1]:g} s, "
          f"restart after {args.restart_after[0]:g}-{args.restart_after[1]:g} s, for {args.minutes:g} min "
          f"(seed {args.seed})")
    with benchlib.BenchFarm(keep=args.keep) as farm:
        if args.keep:
            print(f"  farm in {farm.root}")
        soak = Soak(args, farm)
        for host in soak.hosts:
            soak.start(host)
        farm.wait_ready(soak.hosts)
        farm.send("* render()")
        soak.t0 = time.monotonic()
        soak.next_kill = soak.t0 + soak.rng.uniform(*args.kill_every)
        chaos_until = soak.t0 + args.minutes * 60
        rounds = []
        while True:
            rounds.append(soak.run_round(len(rounds) + 1, chaos_until))
            if time.monotonic() >= chaos_until:
                break
        soak.sample_memory(time.monotonic())
        soak.scan_orphans(time.monotonic())
        live_orphans_after_chaos = sorted(soak.live_orphans)
        memory = soak.memory_report()
        # Graceful end: every agent quits, stopping its renders.
        farm.send("* quit()")
        for host, popen in farm.agents.items():
            try:
                popen.wait(timeout=30)
            except Exception:
                print(f"  {host} did not quit")
        left = leftover_renders(soak.standin.script)
        lived = [t for t in (o.lived_after_kill() for o in soak.orphans.values()) if t is not None]
        orphans = {"seen": len(soak.orphans),
                   "lived_after_agent_kill_s": benchlib.summary_stats(lived) if lived else None,
                   "max_age_s": round(max(lived), 1) if lived else 0.0,
                   "leaked": soak.leaked, "alive_after_chaos": live_orphans_after_chaos,
                   "left_after_quit": left, "grace_s": ORPHAN_GRACE_S,
                   "ok": not soak.leaked and not left}
        for pid in left:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
    frames_ok = all(r["ok"] for r in rounds)
    elapsed = time.monotonic() - soak.t0
    print(f"\n{len(rounds)} round(s), {sum(r['frames'] for r in rounds)} frames, {soak.kills} kills, "
          f"{soak.restarts} restarts in {elapsed / 60:.1f} min")
    print(f"  every frame completed exactly once: {benchlib.verdict(frames_ok)} "
          f"(duplicates {sum(len(r['duplicate_completions']) for r in rounds)}, "
          f"completed but log line lost to kill -9: {sum(r['completed_without_log_line'] for r in rounds)}, "
          f"renders wasted by kills: {sum(r['wasted_renders'] for r in rounds)}, "
          f"leftover temp outputs: {sum(r['leftover_temp_outputs'] for r in rounds)})")
    print(
        f"  no orphaned child process: {benchlib.verdict(orphans['ok'])} (orphans seen {orphans['seen']}, "
        f"longest lived {orphans['max_age_s']} s after its agent's kill, leaked {len(orphans['leaked'])}, "
        f"left after quit {len(left)})"
    )
    steady = memory["steady_agents"]
    print(
        f"  agent memory flat: {benchlib.verdict(memory['ok'])} ("
        + "; ".join(
            f"{h}: {s['first_mb']} -> {s['last_mb']} MB over {s['last_at_s'] - s['first_at_s']} s "
            f"(+{s['growth_first_half_mb']} then +{s['growth_second_half_mb']} MB)"
            for h, s in steady.items()
        )
        + f"; peak RSS of all agent processes p50 {memory['peak_rss_mb']['p50']:.1f} / max "
        f"{memory['peak_rss_mb']['p100']:.1f} MB)"
    )
    ok = frames_ok and orphans["ok"] and memory["ok"]
    path = benchlib.save_results(args.results, {
        "settings": {**SETTINGS, "agents": args.agents, "steady": args.steady, "frames": args.frames,
                     "frame_s": args.frame_seconds, "kill_every_s": list(args.kill_every),
                     "restart_after_s": list(args.restart_after), "max_down": args.max_down,
                     "minutes": args.minutes, "seed": args.seed},
        "elapsed_s": round(elapsed, 1), "kills": soak.kills, "restarts": soak.restarts,
        "rounds": rounds, "orphans": orphans, "memory": memory,
        "pass_frames": frames_ok, "pass_orphans": orphans["ok"], "pass_memory": memory["ok"], "pass": ok,
        "target": "every frame completed exactly once, no orphaned child process, agent memory flat",
    })
    print(f"results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
