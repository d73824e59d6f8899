"""Claim names and transitions on a local folder (in-process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envy.render.claims import FolderQueue, Identity, ItemPattern, reset_items, sort_listing
from envy.share.fs import REAL_FS

PATTERN = ItemPattern([".vrscene", ".ass", ".ass.gz"])
ME = Identity("lab3-03", 4211, "9f2c01ab")
YOU = Identity("lab3-04", 5120, "0badcafe")


@pytest.mark.parametrize("name,state,base,ext", [
    ("shot.0001.vrscene", "pending", "shot.0001", ".vrscene"),
    ("SHOT.0001.VRSCENE", "pending", "SHOT.0001", ".VRSCENE"),
    ("shot.0001.ass.gz", "pending", "shot.0001", ".ass.gz"),
    ("shot.0001.envy~retry~1~lab3-02.vrscene", "pending", "shot.0001", ".vrscene"),
    ("shot.0001.envy~work~0~lab3-03~4211~9f2c01ab.ass.gz", "work", "shot.0001", ".ass.gz"),
    ("shot.0001.envy~done~lab3-03~9f2c01ab.vrscene", "done", "shot.0001", ".vrscene"),
    ("shot.0001.envy~failed~3~lab3-03~9f2c01ab.ass", "failed", "shot.0001", ".ass"),
])
def test_item_names_round_trip(name: str, state: str, base: str, ext: str) -> None:
    item = PATTERN.parse(name)
    assert item is not None and (item.state, item.base, item.ext) == (state, base, ext)
    assert item.name() == name


@pytest.mark.parametrize("name", [
    ".DS_Store", "._shot.0001.vrscene", ".nfs000123", "Thumbs.db", "~$shot.vrscene", "shot.0001.exr",
    "shot.0001.envy~bogus~x.vrscene", "shot.0001.envy~work~x~h~1~n.vrscene", ".shot.vrscene.envy-tmp-0123456789ab",
])
def test_foreign_and_junk_names_are_ignored(name: str) -> None:
    assert PATTERN.parse(name) is None


def make(folder: Path, *names: str) -> None:
    folder.mkdir(exist_ok=True)
    for n in names:
        (folder / n).write_text("scene")


def test_claim_complete_keeps_folder_and_extension(tmp_path: Path) -> None:
    make(tmp_path, "shot.0001.ass.gz")
    q = FolderQueue(tmp_path, PATTERN, ME, fs=REAL_FS)
    claim = q.claim_next()
    assert claim is not None and claim.path.name.endswith(".ass.gz") and claim.path.parent == tmp_path
    assert q.complete(claim)
    assert os.listdir(tmp_path) == ["shot.0001.envy~done~lab3-03~9f2c01ab.ass.gz"]


def test_an_item_taken_over_cannot_be_completed_by_the_old_owner(tmp_path: Path) -> None:
    make(tmp_path, "shot.0001.vrscene")
    mine = FolderQueue(tmp_path, PATTERN, ME, fs=REAL_FS)
    claim = mine.claim_next()
    assert claim is not None
    theirs = FolderQueue(tmp_path, PATTERN, YOU, fs=REAL_FS)
    stolen = theirs.reclaim(claim.item)
    assert stolen is not None
    assert not mine.still_mine(claim) and not mine.complete(claim)
    assert mine.fail(claim, 2) is None
    assert theirs.complete(stolen)
    assert theirs.reclaim(claim.item) is None  # a second reclaim of the same stale name loses


def test_failures_count_up_then_fail_and_reset_brings_back_the_original_name(tmp_path: Path) -> None:
    make(tmp_path, "shot.0001.vrscene")
    q = FolderQueue(tmp_path, PATTERN, ME, fs=REAL_FS)
    for expected in ("pending", "pending", "failed"):
        claim = q.claim_next()
        assert claim is not None
        assert q.fail(claim, max_retries=2) == expected
    assert q.claim_next() is None
    listing = sort_listing(os.listdir(tmp_path), PATTERN)
    assert listing.failed[0].failures == 3
    assert reset_items(tmp_path, PATTERN, ["failed"], fs=REAL_FS) == 1
    assert os.listdir(tmp_path) == ["shot.0001.vrscene"]


def test_reset_does_not_overwrite_a_re_exported_frame(tmp_path: Path) -> None:
    make(tmp_path, "shot.0001.envy~done~lab3-03~9f2c01ab.vrscene")
    (tmp_path / "shot.0001.vrscene").write_text("new export")
    assert reset_items(tmp_path, PATTERN, ["done"], fs=REAL_FS) == 0
    assert (tmp_path / "shot.0001.vrscene").read_text() == "new export"


def test_release_gives_the_item_back_with_its_failure_count(tmp_path: Path) -> None:
    make(tmp_path, "shot.0001.envy~retry~1~lab3-02.vrscene")
    q = FolderQueue(tmp_path, PATTERN, ME, fs=REAL_FS)
    claim = q.claim_next()
    assert claim is not None and claim.item.failures == 1
    assert q.release(claim)
    item = PATTERN.parse(os.listdir(tmp_path)[0])
    assert item is not None and item.state == "pending" and item.failures == 1


def test_avoided_items_are_left_for_others(tmp_path: Path) -> None:
    make(tmp_path, "shot.0001.envy~retry~1~lab3-03.vrscene")
    q = FolderQueue(tmp_path, PATTERN, ME, fs=REAL_FS)
    assert q.claim_next(avoid=lambda item: item.host == "lab3-03") is None
    assert q.claim_next() is not None
