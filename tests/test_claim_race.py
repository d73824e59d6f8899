"""Claim race: many processes drain one folder; every item is claimed and completed exactly once."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import Counter
from pathlib import Path

import pytest

from envy.render.claims import FolderQueue, Identity, ItemPattern, sort_listing
from envy.share.fs import REAL_FS
from netshare import net_share, require_netshare

PROCESSES = 16
FILES = 2000


def drain(folder: str, host: str, results: mp.Queue[list[str]]) -> None:
    queue = FolderQueue(Path(folder), ItemPattern([".frame"]), Identity(host, os.getpid(), host[-4:]), fs=REAL_FS)
    won: list[str] = []
    while True:
        claim = queue.claim_next()
        if claim is None:
            break
        assert queue.complete(claim), f"{claim.item.original} was not ours to complete"
        won.append(claim.item.original)
    results.put(won)


def make_items(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"shot.{i:05d}.frame").write_bytes(b"x")


def race(folders: list[Path], verify: Path) -> None:
    ctx = mp.get_context("spawn")
    results: mp.Queue[list[str]] = ctx.Queue()
    procs = [ctx.Process(target=drain, args=(str(folders[i % len(folders)]), f"racer{i:02d}-{i:04d}", results))
             for i in range(PROCESSES)]
    for p in procs:
        p.start()
    claimed: list[str] = []
    for _ in procs:
        claimed += results.get(timeout=240)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    counts = Counter(claimed)
    duplicates = [name for name, n in counts.items() if n > 1]
    assert duplicates == []
    assert len(counts) == FILES
    listing = sort_listing(os.listdir(verify), ItemPattern([".frame"]))
    assert len(listing.done) == FILES and not listing.pending and not listing.working


def test_claim_race_16_processes_2000_files_local_folder(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    make_items(folder, FILES)
    race([folder], folder)


@pytest.mark.netshare
def test_claim_race_16_processes_2000_files_over_3_sshfs_mounts(tmp_path: Path) -> None:
    require_netshare()
    with net_share(tmp_path, mounts=3) as ns:
        make_items(ns.export / "frames", FILES)
        race([m / "frames" for m in ns.mounts], ns.export / "frames")
