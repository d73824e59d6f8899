"""Claims: 32 competing claimer processes draining zero-cost frames on a local folder.

Target (issue 3): aggregate claims per second reported; throughput with
10,000 files in the folder at least 0.8 x that with 100 files; zero duplicates.

Method. 32 processes (multiprocessing, fork), each a claimer with its own
identity (host, pid, nonce) and its own ``FolderQueue`` over the folder, as
32 agents would have, doing exactly what a render worker does minus the
render: ``claim_next()`` (a rename to a name carrying its identity) then
``complete()`` (the ownership stat, then a rename to the done name). A
"claim" below is one item taken from pending to done this way.

* 10,000 files: one folder of 10,000 frame files, drained once by all 32.
* 100 files: 100 folders of 100 files, drained one after another by all 32
  (a barrier before each folder), so the same 10,000 claims are made.

Both cases run three times (``--repeats``) and are pooled (claims and times
added up), because on a small shared machine single runs scatter widely.

A folder's time runs from the first claimer's start (after the barrier) to
its last item being done; the 100 rounds' times are added up. Claims per
second = claims / time. Each claimer also reports its CPU time (getrusage),
so claims per CPU second, a measure of a claim's cost that other load on the
machine barely touches, is reported beside it. Every claimer records what it claimed and
how many renames it attempted (a failed attempt means another claimer was
first). Duplicates: afterwards each item must have been claimed by exactly
one claimer, and the folder must hold each item exactly once, under a done
name, with nothing pending or in work left.

The machine has far fewer cores than 32 claimers: they take turns on the
CPU, which is part of what is measured.

    python benchmarks/claims.py [--quick] [--repeats N] [--processes N] [--files N]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib
from envy.render.claims import FolderQueue, Identity, ItemPattern
from envy.share.fs import PathLike, ShareFS
from envy.share.names import nonce

EXT = ".frame"
SMALL = 100
RATIO_TARGET = 0.8


class CountingFS(ShareFS):
    """The real filesystem, counting the operations a claimer makes."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def rename(self, src: PathLike, dst: PathLike) -> None:
        self.counts["rename"] += 1
        try:
            super().rename(src, dst)
        except OSError:
            self.counts["rename_failed"] += 1
            raise

    def listdir(self, path: PathLike) -> list[str]:
        self.counts["listdir"] += 1
        return super().listdir(path)

    def stat(self, path: PathLike) -> os.stat_result:
        self.counts["stat"] += 1
        return super().stat(path)


def drain(folder: Path, index: int) -> dict[str, Any]:
    fs = CountingFS()
    queue = FolderQueue(folder, ItemPattern([EXT]), Identity(f"claimer-{index:02d}", os.getpid(), nonce()), fs)
    claimed: list[str] = []
    lost = 0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = last_done = time.monotonic()
    while True:
        claim = queue.claim_next()
        if claim is None:
            break
        if queue.complete(claim):
            claimed.append(claim.item.original)
            last_done = time.monotonic()
        else:
            lost += 1
    end = time.monotonic()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "start": start,
        "end": end,
        "last_done": last_done,
        "claimed": claimed,
        "lost": lost,
        "ops": dict(fs.counts),
        "user_s": cpu1.ru_utime - cpu0.ru_utime,
        "sys_s": cpu1.ru_stime - cpu0.ru_stime,
        "waits": cpu1.ru_nvcsw - cpu0.ru_nvcsw,
    }


def claimer(index: int, folders: list[list[str]], barrier: Any, results: Any) -> None:
    """Drain each group of folders after a barrier; report per group."""
    for group, names in enumerate(folders):
        barrier.wait()
        for name in names:
            r = drain(Path(name), index)
            r.update(group=group, folder=name, index=index)
            results.put(r)


def make_folder(folder: Path, count: int) -> None:
    benchlib.make_frames(folder, count, EXT, stem="frame")


def run_phase(label: str, folders: list[Path], processes: int, ctx: Any) -> list[dict[str, Any]]:
    """All claimers drain ``folders`` one after another (a barrier before each)."""
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    plan = [[str(f)] for f in folders]
    procs = [ctx.Process(target=claimer, args=(i, plan, barrier, results)) for i in range(processes)]
    for p in procs:
        p.start()
    collected: list[dict[str, Any]] = []
    for _ in folders:
        barrier.wait()
    for _ in range(processes * len(folders)):
        collected.append(results.get(timeout=600))
    for p in procs:
        p.join(timeout=60)
    print(f"  {label}: done")
    return collected


def summarise(results: list[dict[str, Any]], folders: list[Path], files_per_folder: int) -> dict[str, Any]:
    per_folder: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in results:
        per_folder[r["folder"]].append(r)
    elapsed = until_all_idle = 0.0
    claims_by_item: collections.Counter[str] = collections.Counter()
    ops: collections.Counter[str] = collections.Counter()
    lost = 0
    user = sum(r["user_s"] for r in results)
    system = sum(r["sys_s"] for r in results)
    waits = sum(r["waits"] for r in results)
    for folder, rs in per_folder.items():
        # The folder is drained when its last item is done (a claimer still finding out that
        # nothing is left, after that, is not counted).
        elapsed += max(r["last_done"] for r in rs) - min(r["start"] for r in rs)
        until_all_idle += max(r["end"] for r in rs) - min(r["start"] for r in rs)
        for r in rs:
            claims_by_item.update(f"{folder}/{name}" for name in r["claimed"])
            ops.update(r["ops"])
            lost += r["lost"]
    total = sum(claims_by_item.values())
    # What the folders hold now: every item once, done, nothing left pending or in work.
    pattern = ItemPattern([EXT])
    leftovers, done_names = 0, 0
    item_states: collections.Counter[str] = collections.Counter()
    for folder_path in folders:
        for name in os.listdir(folder_path):
            item = pattern.parse(name)
            if item is None:
                continue
            item_states[f"{folder_path}/{item.original}"] += 1
            if item.state == "done":
                done_names += 1
            else:
                leftovers += 1
    expected = len(folders) * files_per_folder
    duplicates = sum(1 for n in claims_by_item.values() if n > 1)
    never = expected - len(claims_by_item)
    per_claimer: collections.Counter[int] = collections.Counter()
    for r in results:
        per_claimer[r["index"]] += len(r["claimed"])
    return {
        "folders": len(folders),
        "files_per_folder": files_per_folder,
        "claims": total,
        "elapsed_s": round(elapsed, 3),
        "claims_per_s": round(total / elapsed, 1),
        "elapsed_until_every_claimer_found_none_s": round(until_all_idle, 3),
        "rename_attempts": ops["rename"],
        "rename_failed": ops["rename_failed"],
        "listdir": ops["listdir"],
        "stat": ops["stat"],
        "attempts_per_claim": round(ops["rename"] / max(total, 1), 2),
        "cpu_user_s": round(user, 2),
        "cpu_sys_s": round(system, 2),
        "cpu_ms_per_claim": round(1000 * (user + system) / max(total, 1), 3),
        "claims_per_cpu_s": round(total / max(user + system, 1e-9), 1),
        # CPU used / CPU available (every core, until every claimer has found the folder empty):
        # low when claimers sleep, e.g. waiting for the folder's lock in the kernel.
        "cpu_busy_fraction": round((user + system) / (until_all_idle * (os.cpu_count() or 1)), 3),
        "voluntary_waits_per_claim": round(waits / max(total, 1), 2),
        "claims_per_claimer": {"min": min(per_claimer.values()), "max": max(per_claimer.values())},
        "duplicate_claims": duplicates,
        "never_claimed": never,
        "lost_before_complete": lost,
        "done_names": done_names,
        "left_pending_or_work": leftovers,
        "items_not_exactly_once_in_folder": sum(1 for n in item_states.values() if n != 1)
        + (expected - len(item_states)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3,000 claims per case instead of 10,000")
    parser.add_argument("--processes", type=int, default=32)
    parser.add_argument("--files", type=int, default=None, help="files in the big folder (default 10,000)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="run both cases this many times and pool them (default 3; --quick: 1)")
    benchlib.add_load_args(parser)
    args = parser.parse_args()
    benchlib.begin(args)
    big = args.files or (3_000 if args.quick else 10_000)
    repeats = args.repeats or (1 if args.quick else 3)
    rounds = big // SMALL
    ctx = mp.get_context("fork")
    runs = []
    print(f"{args.processes} claimer processes; {big:,} files in one folder, then {rounds} folders of {SMALL}; "
          f"{repeats} time(s) ...")
    for rep in range(1, repeats + 1):
        with tempfile.TemporaryDirectory(prefix="envy-claims-") as tmp:
            root = Path(tmp)
            big_folder = root / "big"
            make_folder(big_folder, big)
            small_folders = [root / f"small{r:03d}" for r in range(rounds)]
            for f in small_folders:
                make_folder(f, SMALL)
            big_r = summarise(
                run_phase(f"run {rep}: {big:,} files", [big_folder], args.processes, ctx), [big_folder], big
            )
            small_r = summarise(run_phase(f"run {rep}: {rounds} x {SMALL} files", small_folders, args.processes, ctx),
                                small_folders, SMALL)
        runs.append({"run": rep, "load_average": benchlib.load_average(), "big": big_r, "small": small_r,
                     "ratio": round(big_r["claims_per_s"] / small_r["claims_per_s"], 3),
                     "cpu_cost_ratio": round(big_r["claims_per_cpu_s"] / small_r["claims_per_cpu_s"], 3)})
    pooled = {case: pool([r[case] for r in runs]) for case in ("big", "small")}
    ratio = pooled["big"]["claims_per_s"] / pooled["small"]["claims_per_s"]
    cpu_ratio = pooled["big"]["claims_per_cpu_s"] / pooled["small"]["claims_per_cpu_s"]
    clean = all(r[case]["duplicate_claims"] == 0 and r[case]["never_claimed"] == 0
                and r[case]["left_pending_or_work"] == 0 and r[case]["items_not_exactly_once_in_folder"] == 0
                for r in runs for case in ("big", "small"))
    ok = ratio >= RATIO_TARGET and clean
    for r in runs:
        for label, case in ((f"{big:,} files", "big"), (f"{rounds} x {SMALL} files", "small")):
            c = r[case]
            print(
                f"run {r['run']} {label:16s}: {c['claims']:,} claims in {c['elapsed_s']:.2f} s = "
                f"{c['claims_per_s']:8.1f} claims/s; {c['attempts_per_claim']} rename attempts/claim, "
                f"{c['listdir']} listings, CPU {c['cpu_ms_per_claim']} ms/claim, "
                f"CPUs busy {c['cpu_busy_fraction']:.0%}; "
                f"duplicates {c['duplicate_claims']}, never claimed {c['never_claimed']}, "
                f"left over {c['left_pending_or_work']}"
            )
        print(
            f"run {r['run']} ratio {r['ratio']:.3f} (CPU cost ratio {r['cpu_cost_ratio']:.3f}), "
            f"load {r['load_average']}"
        )
    for label, case in ((f"{big:,} files", "big"), (f"{rounds} x {SMALL} files", "small")):
        c = pooled[case]
        print(
            f"all runs {label:16s}: {c['claims']:,} claims in {c['elapsed_s']:.2f} s = "
            f"{c['claims_per_s']:8.1f} claims/s, "
            f"CPU {c['cpu_ms_per_claim']} ms/claim"
        )
    print(
        f"CPU cost ratio (claims per CPU second, {big:,} / {SMALL} files) = {cpu_ratio:.3f} "
        "(less sensitive to other load)"
    )
    print(f"throughput ratio {big:,} / {SMALL} files = {ratio:.3f} (target >= {RATIO_TARGET}); "
          f"zero duplicates: {clean}: {benchlib.verdict(ok)}")
    path = benchlib.save_results("claims", {
        "processes": args.processes, "files_big": big, "files_small": SMALL,
        "repeats": repeats, "pooled": pooled, "ratio": round(ratio, 3), "cpu_cost_ratio": round(cpu_ratio, 3),
        "zero_duplicates": clean, "pass": ok, "runs": runs,
        "target": f"claims/s with {big:,} files >= {RATIO_TARGET} x with {SMALL}; zero duplicates",
    })
    print(f"results: {path}")
    return 0 if ok else 1


def pool(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one case as one: claims, time and CPU added up."""
    claims = sum(c["claims"] for c in cases)
    elapsed = sum(c["elapsed_s"] for c in cases)
    cpu = sum(c["cpu_user_s"] + c["cpu_sys_s"] for c in cases)
    attempts = sum(c["rename_attempts"] for c in cases)
    return {"claims": claims, "elapsed_s": round(elapsed, 3), "claims_per_s": round(claims / elapsed, 1),
            "cpu_s": round(cpu, 2), "cpu_ms_per_claim": round(1000 * cpu / claims, 3),
            "claims_per_cpu_s": round(claims / cpu, 1), "attempts_per_claim": round(attempts / claims, 2),
            "duplicate_claims": sum(c["duplicate_claims"] for c in cases)}


if __name__ == "__main__":
    raise SystemExit(main())
