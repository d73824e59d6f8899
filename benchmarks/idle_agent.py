"""An idle agent's footprint: resident memory and CPU.

Target (issue 2): RSS at most 40 MB; CPU at most 0.5 % of one core over 5 minutes.

Method. One agent at default settings on a fresh share, started as
``python -m envy agent``. After it has heartbeated and a warm-up has passed,
psutil samples its resident set size every few seconds and reads its CPU
time (user + system, of all its threads) at the start and end of the window:
CPU % = CPU seconds / wall seconds x 100. ``VmHWM`` (the kernel's peak RSS,
start-up included) and USS (memory only this process holds) are reported too.

Two agents are measured side by side: one on a local folder (which also runs
watchdog's inotify observer for early wake-ups) and, where FUSE and sshfs are
available, one on a loopback sshfs mount (tests/netshare.py), the network
share case, where Envy does not start the observer.

    python benchmarks/idle_agent.py [--quick] [--minutes M]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

import benchlib
from envy.share.fs import REAL_FS
from envy.share.layout import init_share

RSS_LIMIT_MB = 40.0
CPU_LIMIT_PCT = 0.5
WARMUP_S = 10.0
SAMPLE_S = 5.0
MB = 2**20


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="measure for 1 minute instead of 5")
    parser.add_argument("--minutes", type=float, default=None, help="measuring window (default 5)")
    parser.add_argument("--no-sshfs", action="store_true", help="measure the local-share agent only")
    benchlib.add_load_args(parser)
    args = parser.parse_args()
    benchlib.begin(args)
    minutes = args.minutes or (1.0 if args.quick else 5.0)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="envy-idle-") as tmp, contextlib.ExitStack() as stack:
        tmp_path = Path(tmp)
        procs: dict[str, psutil.Process] = {}
        farms: dict[str, benchlib.BenchFarm] = {}
        farms["local"] = stack.enter_context(benchlib.BenchFarm(tmp_path / "local"))
        netshare = None if args.no_sshfs else benchlib.netshare_module()
        if netshare is not None:
            net = stack.enter_context(netshare.net_share(tmp_path / "net", mounts=1, cache=True))
            init_share(net.export, "bench", fs=REAL_FS)
            farms["sshfs"] = stack.enter_context(benchlib.BenchFarm(tmp_path / "sshfs", share=net.mounts[0]))
        for mode, farm in farms.items():
            procs[mode] = psutil.Process(farm.start_agent("lab2-01").pid)
        for farm in farms.values():
            farm.wait_ready(["lab2-01"], timeout=120)
        time.sleep(WARMUP_S)  # start-up work (imports, first status write) is not idle cost
        t0 = time.monotonic()
        cpu0 = {m: cpu_seconds(p) for m, p in procs.items()}
        rss: dict[str, list[float]] = {m: [] for m in procs}
        threads: dict[str, int] = {}
        print(f"measuring {len(procs)} idle agent(s) for {minutes:g} min ...")
        end = t0 + minutes * 60
        while True:
            for m, p in procs.items():
                rss[m].append(p.memory_info().rss / MB)
                threads[m] = p.num_threads()
            if time.monotonic() >= end:
                break
            time.sleep(min(SAMPLE_S, max(0.0, end - time.monotonic())))
        wall = time.monotonic() - t0
        for m, p in procs.items():
            cpu = cpu_seconds(p) - cpu0[m]
            uss = p.memory_full_info().uss / MB
            results[m] = {
                "rss_mb": {"max": round(max(rss[m]), 1), "mean": round(sum(rss[m]) / len(rss[m]), 1),
                           "last": round(rss[m][-1], 1), "samples": len(rss[m])},
                "peak_rss_vmhwm_mb": round(peak_rss_mb(p.pid) or float("nan"), 1),
                "uss_mb": round(uss, 1), "threads": threads[m],
                "cpu_s": round(cpu, 3), "wall_s": round(wall, 1), "cpu_pct": round(100 * cpu / wall, 3),
            }
            r = results[m]
            r["pass"] = r["rss_mb"]["max"] <= RSS_LIMIT_MB and r["cpu_pct"] <= CPU_LIMIT_PCT
        for farm in farms.values():
            farm.stop_agents()

    ok = all(r["pass"] for r in results.values())
    print(f"\ntarget: RSS <= {RSS_LIMIT_MB:g} MB, CPU <= {CPU_LIMIT_PCT:g} % of one core")
    for m, r in results.items():
        print(f"{m:6s}: RSS max {r['rss_mb']['max']} MB (peak incl. start-up {r['peak_rss_vmhwm_mb']} MB, "
              f"USS {r['uss_mb']} MB, {r['threads']} threads); CPU {r['cpu_s']} s in {r['wall_s']} s = "
              f"{r['cpu_pct']} %: {benchlib.verdict(r['pass'])}")
    path = benchlib.save_results("idle_agent", {
        "settings": "defaults", "minutes": minutes, "warmup_s": WARMUP_S, "agents": results,
        "target": f"RSS <= {RSS_LIMIT_MB:g} MB and CPU <= {CPU_LIMIT_PCT:g} % over 5 minutes", "pass": ok,
    })
    print(f"results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
