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
  (a barrier before each folder), so the same 10,000 claims are made. Each
  round counts from the first claimer's start to the last claimer's finding
  the folder empty; the rounds' times are added up.

Claims per second = claims / time. Every claimer records what it claimed and
how many renames it attempted (a failed attempt means another claimer was
first). Duplicates: afterwards each item must have been claimed by exactly
one claimer, and the folder must hold each item exactly once, under a done
name, with nothing pending or in work left.

The machine has far fewer cores than 32 claimers: they take turns on the
CPU, which is part of what is measured.

    python benchmarks/claims.py [--quick] [--processes N] [--files N]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import benchlib
from envy.render.claims import TAG, Claim, FolderQueue, Identity, ItemName, ItemPattern
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


class SpreadQueue(FolderQueue):
    """EXPERIMENT (``--experiment-spread``): the fix proposed for the missed ratio. Envy's code is unchanged.

    Envy's FolderQueue hands every claimer the same sorted list, so all of them
    walk it in step and each learns of every item another took by a failed
    rename: about one attempt per claimer per item, so a claimer's share of a
    10,000-file folder costs it 10,000 attempts. Here a claimer (1) starts its
    walk at a random point of its listing, (2) lists again after STALE_AFTER
    failed renames in a row (its list is stale: others have been there), and
    (3) makes a listing cheap by parsing only the names that can be pending
    (no ``.envy~`` tag, or a ``retry`` tag): done names are skipped by a
    substring test instead of three regular expressions.
    """

    STALE_AFTER = 8

    def refresh(self) -> Any:
        names = [n for n in self.fs.listdir(self.folder) if TAG not in n or f"{TAG}retry~" in n]
        pending = sorted((i for i in map(self.pattern.parse, names) if i is not None and i.state == "pending"),
                         key=lambda i: i.key)
        k = random.randrange(len(pending)) if pending else 0
        self._candidates = pending[k:] + pending[:k]
        self._pos = 0
        return None

    def claim_next(self, avoid: Callable[[ItemName], bool] | None = None) -> Claim | None:
        refreshed = False
        misses = 0
        while True:
            with self._lock:
                item = self._pick(avoid)
                if item is None or misses >= self.STALE_AFTER:
                    if item is None and refreshed:
                        return None
                    self.refresh()
                    refreshed, misses = True, 0
                    continue
            claim = self.try_claim(item)
            if claim is not None:
                return claim
            misses += 1


QUEUE_CLASS: type[FolderQueue] = FolderQueue


def drain(folder: Path, index: int) -> dict[str, Any]:
    fs = CountingFS()
    queue = QUEUE_CLASS(folder, ItemPattern([EXT]), Identity(f"claimer-{index:02d}", os.getpid(), nonce()), fs)
    claimed: list[str] = []
    lost = 0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    while True:
        claim = queue.claim_next()
        if claim is None:
            break
        if queue.complete(claim):
            claimed.append(claim.item.original)
        else:
            lost += 1
    end = time.monotonic()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"start": start, "end": end, "claimed": claimed, "lost": lost, "ops": dict(fs.counts),
            "user_s": cpu1.ru_utime - cpu0.ru_utime, "sys_s": cpu1.ru_stime - cpu0.ru_stime}


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
    elapsed = 0.0
    claims_by_item: collections.Counter[str] = collections.Counter()
    ops: collections.Counter[str] = collections.Counter()
    lost = 0
    user = sum(r["user_s"] for r in results)
    system = sum(r["sys_s"] for r in results)
    for folder, rs in per_folder.items():
        elapsed += max(r["end"] for r in rs) - min(r["start"] for r in rs)
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
        "folders": len(folders), "files_per_folder": files_per_folder, "claims": total,
        "elapsed_s": round(elapsed, 3), "claims_per_s": round(total / elapsed, 1),
        "rename_attempts": ops["rename"], "rename_failed": ops["rename_failed"], "listdir": ops["listdir"],
        "stat": ops["stat"], "attempts_per_claim": round(ops["rename"] / max(total, 1), 2),
        "cpu_user_s": round(user, 2), "cpu_sys_s": round(system, 2),
        "cpu_ms_per_claim": round(1000 * (user + system) / max(total, 1), 3),
        "claims_per_claimer": {"min": min(per_claimer.values()), "max": max(per_claimer.values())},
        "duplicate_claims": duplicates, "never_claimed": never, "lost_before_complete": lost,
        "done_names": done_names, "left_pending_or_work": leftovers,
        "items_not_exactly_once_in_folder": sum(1 for n in item_states.values() if n != 1) + (expected - len(item_states)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3,000 claims per case instead of 10,000")
    parser.add_argument("--processes", type=int, default=32)
    parser.add_argument("--files", type=int, default=None, help="files in the big folder (default 10,000)")
    parser.add_argument("--experiment-spread", action="store_true",
                        help="EXPERIMENT: claimers use SpreadQueue (the proposed fix) instead of Envy's FolderQueue; "
                             "results go to claims-spread-experiment.json")
    benchlib.add_load_args(parser)
    args = parser.parse_args()
    benchlib.begin(args)
    global QUEUE_CLASS
    if args.experiment_spread:
        QUEUE_CLASS = SpreadQueue
    big = args.files or (3_000 if args.quick else 10_000)
    rounds = big // SMALL
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="envy-claims-") as tmp:
        root = Path(tmp)
        big_folder = root / "big"
        make_folder(big_folder, big)
        small_folders = [root / f"small{r:03d}" for r in range(rounds)]
        for f in small_folders:
            make_folder(f, SMALL)
        print(f"{args.processes} claimer processes; {big:,} files in one folder, then {rounds} folders of {SMALL} ...")
        big_results = summarise(run_phase(f"{big:,} files", [big_folder], args.processes, ctx), [big_folder], big)
        small_results = summarise(run_phase(f"{rounds} x {SMALL} files", small_folders, args.processes, ctx),
                                  small_folders, SMALL)
    ratio = big_results["claims_per_s"] / small_results["claims_per_s"]
    clean = all(r["duplicate_claims"] == 0 and r["never_claimed"] == 0 and r["left_pending_or_work"] == 0
                and r["items_not_exactly_once_in_folder"] == 0 for r in (big_results, small_results))
    ok = ratio >= RATIO_TARGET and clean
    for label, r in ((f"{big:,} files", big_results), (f"{rounds} x {SMALL} files", small_results)):
        print(f"{label:16s}: {r['claims']:,} claims in {r['elapsed_s']:.2f} s = {r['claims_per_s']:8.1f} claims/s; "
              f"{r['attempts_per_claim']} rename attempts/claim, {r['listdir']} listings, CPU {r['cpu_ms_per_claim']} ms/claim "
              f"(user {r['cpu_user_s']} s, sys {r['cpu_sys_s']} s); duplicates "
              f"{r['duplicate_claims']}, never claimed {r['never_claimed']}, left over {r['left_pending_or_work']}")
    print(f"throughput ratio {big:,} / {SMALL} files = {ratio:.3f} (target >= {RATIO_TARGET}); "
          f"zero duplicates: {clean}: {benchlib.verdict(ok)}")
    name = "claims-spread-experiment" if args.experiment_spread else "claims"
    path = benchlib.save_results(name, {
        "queue": QUEUE_CLASS.__name__, "processes": args.processes, "big": big_results, "small": small_results, "ratio": round(ratio, 3),
        "zero_duplicates": clean, "pass": ok,
        "target": f"claims/s with {big:,} files >= {RATIO_TARGET} x with {SMALL}; zero duplicates",
    })
    print(f"results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
