"""Renames as the protocol uses them (ENGINEERING §1.2, §1.3).

* publish: ``os.replace`` of a temp file onto an existing name must work, and a
  reader polling the name meanwhile must see the old or the new file, never
  nothing and never half of one;
* no-replace: Envy's rename_no_replace must refuse an existing destination and
  leave both files;
* exclusive create (seats) must refuse an existing name;
* with a second mount: two machines renaming one file, exactly one wins.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from envy.doctor.context import DoctorContext
from envy.doctor.result import CheckResult, Verdict
from envy.platform.files import HELD_OPEN_ERRNOS
from envy.share.atomic import atomic_write, rename_attempt

NAME = "rename atomicity and no-replace"
_PUBLISHES = 30


def check_renames(ctx: DoctorContext) -> CheckResult:
    problems: list[str] = []
    facts: dict[str, object] = {}
    fs, probe = ctx.fs, ctx.probe

    # publish by replace, with a reader watching
    target = probe / "published.txt"
    atomic_write(target, _published(0), fs)
    try:
        seen_missing, seen_torn, held = _replace_under_reader(ctx, target)
    except OSError as exc:
        return CheckResult(
            NAME,
            Verdict.FAIL,
            f"replacing an existing file failed ({exc.__class__.__name__}: {exc}): "
            "nothing can be published atomically here (status files, instructions.txt)",
            [
                (
                    "sshfs: the server must offer posix-rename (OpenSSH does); SMB: use SMB 2 or later; "
                    "or put the farm on another share"
                )
            ],
            facts,
        )
    facts.update(publishes=_PUBLISHES, reader_saw_missing=seen_missing, reader_saw_torn=seen_torn,
                 refused_while_read=held)
    if held == _PUBLISHES:
        problems.append("no file could be replaced while a reader had it open")
    if seen_torn:
        problems.append(
            f"a reader saw a half-written file during a replace ({seen_torn} times in {_PUBLISHES} publishes)"
        )
    cautions: list[str] = []
    if held and held < _PUBLISHES:
        # SMB sharing: a file another handle holds open cannot be replaced. Envy's publish retries
        # for a few seconds (envy/platform/files.py), enough for the brief reads of polls and observers.
        cautions.append(
            f"a file being read cannot be replaced until the reader closes it ({held} of {_PUBLISHES} "
            "publishes waited out a reader reading without pause; Envy retries such a replace for about 2.5 s)"
        )
    if seen_missing:
        # Envy treats "not found" as a hint (ENGINEERING §1.7), so this only costs a poll.
        cautions.append(
            f"a reader on this mount briefly found no file while it was replaced "
            f"({seen_missing} times in {_PUBLISHES} publishes)"
        )

    # plain rename onto an existing name: Envy never does it; report what the share does
    a, b = probe / "a.txt", probe / "b.txt"
    fs.write_new(a, b"a")
    fs.write_new(b, b"b")
    try:
        fs.rename(a, b)
        facts["rename_onto_existing"] = "overwrites"
    except OSError as exc:
        facts["rename_onto_existing"] = f"refused ({exc.__class__.__name__})"
    for p in (a, b):
        if p.exists():
            fs.unlink(p)

    # no-replace rename
    src, dst = probe / "claim-src", probe / "claim-dst"
    fs.write_new(src, b"src")
    fs.write_new(dst, b"dst")
    try:
        fs.rename_no_replace(src, dst)
        problems.append("rename_no_replace overwrote an existing file: a reset could destroy a claim")
        facts["no_replace"] = "overwrote"
    except FileExistsError:
        intact = fs.read_bytes(src) == b"src" and fs.read_bytes(dst) == b"dst"
        facts["no_replace"] = "refused, both intact" if intact else "refused, but a file changed"
        if not intact:
            problems.append("a refused no-replace rename changed a file")
    except OSError as exc:
        facts["no_replace"] = f"error {exc}"
        problems.append(f"rename_no_replace failed with {exc.__class__.__name__}: {exc}")

    # exclusive create (seats use it)
    try:
        fs.write_new(dst, b"again")
        problems.append("creating an existing file with O_EXCL succeeded: seats cannot be exclusive here")
        facts["exclusive_create"] = "not exclusive"
    except FileExistsError:
        facts["exclusive_create"] = "refused"

    if ctx.second_probe is not None:
        winners = _race_two_mounts(ctx)
        facts["two_mount_race_winners"] = winners
        if winners != 1:
            problems.append(f"two mounts renamed the same file and {winners} of them won (must be exactly 1)")

    if problems:
        return CheckResult(
            NAME,
            Verdict.FAIL,
            "; ".join(problems),
            [
                (
                    "this share cannot hold claims safely: use another file server or share type "
                    "(SMB 2+, NFSv3/v4, or sshfs with posix-rename)"
                )
            ],
            facts,
        )
    extra = "" if ctx.second_probe is not None else " (give --second-mount to race two machines)"
    if cautions:
        return CheckResult(
            NAME,
            Verdict.WARN,
            "; ".join(cautions) + extra,
            [
                (
                    "Envy copes (a missing file is a hint and the next poll reads it), but tools that "
                    "give up on 'not found' will fail here now and then"
                )
            ],
            facts,
        )
    return CheckResult(
        NAME,
        Verdict.OK,
        f"replace publishes atomically, no-replace refuses, exclusive create refuses; "
        f"plain rename onto an existing name {facts['rename_onto_existing']}{extra}",
        [],
        facts,
    )


def _replace_under_reader(ctx: DoctorContext, target: Path) -> tuple[int, int, int]:
    """(missing, torn, held): what a reader saw while the target was replaced, and how many
    replaces were refused because the reader held the file open (SMB) even after Envy's retries."""
    stop = threading.Event()
    counts = {"missing": 0, "torn": 0, "held": 0}

    def reader() -> None:
        # A pause lets the writer run (one GIL) and, on SMB, find the file closed now and then: a
        # replace waits for readers there. 5 ms is still far more often than any Envy reader looks.
        while not stop.wait(0.005):
            try:
                data = ctx.fs.read_bytes(target)
            except FileNotFoundError:
                counts["missing"] += 1
                continue
            except OSError:
                continue  # Windows sharing violations are not a torn file
            if not (data.startswith(b"version ") and data.endswith(b"\nend\n")):
                counts["torn"] += 1

    thread = threading.Thread(target=reader, name="doctor-reader", daemon=True)
    thread.start()
    try:
        for i in range(1, _PUBLISHES + 1):
            try:
                atomic_write(target, _published(i), ctx.fs)
            except OSError as exc:
                if exc.errno not in HELD_OPEN_ERRNOS:
                    raise
                counts["held"] += 1
    finally:
        stop.set()
        thread.join(timeout=10)
    return counts["missing"], counts["torn"], counts["held"]


def _published(i: int) -> bytes:
    """A file a reader can tell is whole: a head, 4 kB of body and a tail."""
    return b"version %d\n" % i + b"x" * 4096 + b"\nend\n"


def _race_two_mounts(ctx: DoctorContext) -> int:
    """Rename one file through both mounts at once; count who won (by stat of each chosen name)."""
    assert ctx.second_probe is not None
    item = ctx.probe / "race-item"
    ctx.fs.write_new(item, b"frame")
    wait_until_seen(ctx, ctx.second_probe / "race-item")
    sources = [item, ctx.second_probe / "race-item"]
    dests = [ctx.probe / "race-item.mount0", ctx.second_probe / "race-item.mount1"]
    barrier = threading.Barrier(2)
    won = [False, False]

    def attempt(i: int) -> None:
        barrier.wait(timeout=10)
        won[i] = rename_attempt(sources[i], dests[i], ctx.fs)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return sum(won)


def wait_until_seen(ctx: DoctorContext, path: Path) -> bool:
    deadline = ctx.monotonic() + ctx.visibility_wait
    while ctx.monotonic() < deadline:
        if os.path.exists(path):
            return True
        threading.Event().wait(0.05)
    return False
