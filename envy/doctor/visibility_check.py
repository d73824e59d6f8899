"""How long another client's change takes to be seen (ENGINEERING §1.11).

Through the first mount we make four changes at once; through the second we
time, each on its own, until it shows:

* a new file found by stat (a name this client never looked up);
* new content found by open + read (what agents use to poll the instruction file);
* the new size found by stat (what a stat-before-read poll relies on);
* a removed file gone from stat (cached positive entries linger).

Waits are capped by ``ctx.visibility_wait``; what did not show by then is
reported as "more than N s".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from envy.doctor.context import DoctorContext
from envy.doctor.result import CheckResult, Verdict
from envy.share.atomic import atomic_write

NAME = "visibility between clients"
_POLL_S = 0.05


def check_visibility(ctx: DoctorContext, dead_after: float = 30.0, heartbeat: float = 5.0) -> CheckResult:
    other = ctx.second_probe
    if other is None:
        return CheckResult(
            NAME,
            Verdict.SKIP,
            "not measured: no second mount given",
            [
                (
                    "mount the same share a second time (or on a second machine) and run "
                    "envy doctor SHARE --second-mount OTHER_MOUNT"
                )
            ],
        )
    fs, probe = ctx.fs, ctx.probe
    # prime the second mount's caches with the old state first, as a polling agent's would be
    atomic_write(probe / "changed.txt", b"old", fs)
    fs.write_new(probe / "removed.txt", b"bye")
    if not _wait(ctx, lambda: (other / "changed.txt").exists() and (other / "removed.txt").exists()):
        return CheckResult(
            NAME,
            Verdict.FAIL,
            f"files written through {ctx.layout.root} never showed in {ctx.second_mount}",
            ["give --second-mount the same Envy folder, mounted a second time"],
        )
    (other / "changed.txt").stat()
    (other / "removed.txt").stat()
    _read(other / "changed.txt")

    probes: dict[str, Callable[[], bool]] = {
        "new_file_stat": lambda: (other / "new.txt").exists(),
        "changed_content_read": lambda: _read(other / "changed.txt") == b"new content",
        "changed_size_stat": lambda: (other / "changed.txt").stat().st_size == len(b"new content"),
        "removed_file_stat": lambda: not (other / "removed.txt").exists(),
    }
    start = ctx.monotonic()
    fs.write_new(probe / "new.txt", b"new")
    atomic_write(probe / "changed.txt", b"new content", fs)
    fs.unlink(probe / "removed.txt")
    times = _time_all(ctx, probes, start)
    facts = {k: (round(v, 3) if v is not None else None) for k, v in times.items()}
    facts["waited_up_to_s"] = ctx.visibility_wait
    text = ", ".join(f"{k.replace('_', ' ')} {_fmt(v, ctx.visibility_wait)}" for k, v in times.items())
    worst = max((v if v is not None else float("inf")) for v in times.values())
    read_time = times["changed_content_read"]
    advice: list[str] = []
    verdict = Verdict.OK
    if read_time is None or read_time > heartbeat:
        verdict = Verdict.FAIL
        advice.append(
            "an open + read does not see other machines' writes quickly: agents will act late; "
            "mount without long data caching (NFS: no 'nocto'; SMB on Windows: see the admin guide)"
        )
    if worst > dead_after - heartbeat:
        verdict = max(verdict, Verdict.WARN, key=[Verdict.OK, Verdict.WARN, Verdict.FAIL].index)
        advice.append(
            f"some changes take longer than dead_after - heartbeat ({dead_after - heartbeat:g} s) to show: "
            f"raise dead_after in config.yaml to at least heartbeat + {_fmt(worst, ctx.visibility_wait)} + a margin"
        )
    if not advice:
        advice.append(
            f"size dead_after from heartbeat + the slowest of these ({_fmt(worst, ctx.visibility_wait)}) + a margin"
        )
    return CheckResult(NAME, verdict, text, advice, facts)


def _time_all(ctx: DoctorContext, probes: dict[str, Callable[[], bool]], start: float) -> dict[str, float | None]:
    """Poll every probe in its own thread, so the slow ones do not delay the quick ones."""
    seen: dict[str, float | None] = {k: None for k in probes}

    def watch(key: str) -> None:
        if _wait(ctx, probes[key]):
            seen[key] = ctx.monotonic() - start

    threads = [threading.Thread(target=watch, args=(k,), name=f"doctor-{k}") for k in probes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seen


def _wait(ctx: DoctorContext, predicate: Callable[[], bool]) -> bool:
    deadline = ctx.monotonic() + ctx.visibility_wait
    pause = threading.Event()
    while True:
        try:
            if predicate():
                return True
        except OSError:
            pass
        if ctx.monotonic() >= deadline:
            return False
        pause.wait(_POLL_S)


def _read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096)


def _fmt(seconds: float | None, cap: float) -> str:
    if seconds is None or seconds == float("inf"):
        return f"more than {cap:g} s"
    return f"{seconds:.2f} s"
