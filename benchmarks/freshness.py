"""Freshness: which file operations see another machine's change at once, per network client.

ENGINEERING §1.11: a cached answer is not a fresh one; measure which
operations are fresh on each client and write it down (docs/share-layout.md).

Method. Two mounts of one export (two "machines", each with its own client
caches): the real network shares of the test suite, sshfs with its default
caching (tests/netshare.py) and Samba through smbnetfs (tests/smbshare.py).
Machine A publishes a small file the way Envy does (temp name, fsync,
``os.replace``), changed the way the shell changes instructions.txt (one line
more at its end); machine B has just looked at it with the operation under test
and its attributes (so its caches are warm), then repeats that operation every 10 ms until the
answer changes. The time from A's publish to B's first changed answer is that
operation's staleness; on this busy 2-core machine one look at the share
itself takes 0.05 to 0.5 s, so the telling figure is how often the *first* look
after the change already saw it (``first_look_fresh``). Operations:

* ``stat``: ``os.stat(path)`` -> (size, mtime, inode): the old poll;
* ``open+fstat``: open the path, ``fstat`` the handle, close;
* ``open+read``: open, read the (small) file, close;
* ``fresh-read``: open, fstat with the attributes fetched from the server
  (envy/platform/fresh_attrs.py), read, close: ``ShareFS.read_if_changed``, the new poll;
* ``listdir``: a listing of the folder after A created a new file in it;
* ``stat-new-name``: ``stat`` of a name B looked up (missing) just before A created it
  (a negative look-up cache).

    python benchmarks/freshness.py [--trials N] [--only sshfs|samba]

Results: benchmarks/results/freshness.json and the table in docs/share-layout.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

GIVE_UP_S = 40.0
# The change is what the shell does to instructions.txt: the same file with a line more at its end.
BASE = b"# Envy instructions\n"
POLL_S = 0.01


def publish(folder: Path, name: str, data: bytes) -> None:
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)


def op_stat(path: Path) -> object:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def op_open_fstat(path: Path) -> object:
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        return (st.st_size, st.st_mtime_ns, st.st_ino)
    finally:
        os.close(fd)


def op_open_read(path: Path) -> object:
    with open(path, "rb") as f:
        return f.read()


def op_fresh_read(path: Path) -> object:
    from envy.share.fresh import read_fresh

    return read_fresh(str(path), 1 << 20).data


def op_listdir(path: Path) -> object:
    return sorted(os.listdir(path.parent))


def op_stat_new(path: Path) -> object:
    try:
        os.stat(path.with_name("appears"))
        return True
    except FileNotFoundError:
        return False


Operation = Callable[[Path], object]
OPERATIONS: dict[str, Operation] = {
    "stat": op_stat,
    "open+fstat": op_open_fstat,
    "open+read": op_open_read,
    "fresh-read": op_fresh_read,
    "listdir": op_listdir,
    "stat-new-name": op_stat_new,
}


def one_trial(a: Path, b: Path, name: str, op: Operation, trial: int) -> tuple[float | None, int]:
    """Seconds until ``op`` on machine B shows machine A's change (None: never) and how many
    operations that took: 1 means the first look after the change was already fresh."""
    publish(a, "f.txt", BASE)
    for gone in ("appears", *[n for n in os.listdir(a) if n.startswith("new")]):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(a / gone)
    # Let B's caches age past the previous trial's change, then warm them.
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        first = op(b / "f.txt")
        time.sleep(0.5)
        if op(b / "f.txt") == first and (name != "stat-new-name" or first is False):
            break
    for _ in range(3):
        before = op(b / "f.txt")
    os.stat(b / "f.txt")  # B's kernel has just cached the attributes, as after any look at the file
    start = time.monotonic()
    if name == "listdir":
        (a / f"new{trial}").write_bytes(b"")
    elif name == "stat-new-name":
        (a / "appears").write_bytes(b"")
    else:
        publish(a, "f.txt", BASE + f"[{trial}] * print('hi')\n".encode())
    looks = 0
    while time.monotonic() - start < GIVE_UP_S:
        looks += 1
        if op(b / "f.txt") != before:
            return time.monotonic() - start, looks
        time.sleep(POLL_S)
    return None, looks


def measure(a: Path, b: Path, trials: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, op in OPERATIONS.items():
        runs = [one_trial(a, b, name, op, t) for t in range(trials)]
        seen = [r[0] for r in runs]
        got = [s for s in seen if s is not None]
        out[name] = {
            "first_look_fresh": sum(1 for r in runs if r[0] is not None and r[1] == 1),
            "trials_s": [None if s is None else round(s, 3) for s in seen],
            "median_s": round(statistics.median(got), 3) if got else None,
            "max_s": round(max(got), 3) if got else None,
            "never": len(seen) - len(got),
        }
        print(f"  {name:<14} fresh at first look {out[name]['first_look_fresh']}/{trials}  "
              f"median {out[name]['median_s']} s  max {out[name]['max_s']} s  "
              f"(trials {out[name]['trials_s']})", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--only", choices=["sshfs", "samba"])
    args = ap.parse_args()
    results: dict[str, Any] = {"trials": args.trials}
    with tempfile.TemporaryDirectory(prefix="envy-fresh-") as tmp_name:
        tmp = Path(tmp_name)
        if args.only in (None, "sshfs"):
            import netshare

            reason = netshare.netshare_available()
            if reason:
                print(f"sshfs: skipped ({reason})")
            else:
                print("sshfs, default caching:")
                with netshare.net_share(tmp / "ssh", mounts=2) as ns:
                    results["sshfs-default"] = measure(ns.mounts[0], ns.mounts[1], args.trials)
        if args.only in (None, "samba"):
            import smbshare

            reason = smbshare.smbshare_available()
            if reason:
                print(f"samba: skipped ({reason})")
            else:
                print("Samba through smbnetfs:")
                with smbshare.samba_share(tmp / "smb", mounts=2) as ss:
                    results["samba-smbnetfs"] = measure(ss.mounts[0], ss.mounts[1], args.trials)
    out = HERE / "results" / "freshness.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
