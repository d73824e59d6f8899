"""Timestamp granularity, and the file server's clock against this machine's.

The server's time is the mtime of a file we have just written (as in
envy/share/share_clock.py). Envy judges command ages on the server's clock and
liveness by heartbeat counters, so a skewed clock is not fatal, but a large one
confuses people reading logs and mtimes, and FAT-like 2 s timestamps hide quick
changes from anything that compares mtimes.
"""

from __future__ import annotations

from envy.doctor.context import DoctorContext
from envy.doctor.result import CheckResult, Verdict

NAME = "timestamps and server clock"
_SAMPLES = 6
SKEW_WARN_S = 2.0


def check_clock(ctx: DoctorContext) -> CheckResult:
    offsets: list[float] = []
    mtimes_ns: list[int] = []
    for i in range(_SAMPLES):
        path = ctx.probe / f"clock-{i}"
        before = ctx.clock()
        ctx.fs.write_new(path, b"t")
        after = ctx.clock()
        st = ctx.fs.stat(path)
        mtimes_ns.append(st.st_mtime_ns)
        offsets.append(st.st_mtime - (before + after) / 2)
    resolution = _measured_resolution(ctx, ctx.probe / "clock-0", mtimes_ns)
    offsets.sort()
    offset = offsets[len(offsets) // 2]
    # a coarse timestamp is truncated: allow for it before calling the clock skewed
    skew = abs(offset) - resolution
    facts = {"timestamp_resolution_s": resolution, "server_minus_local_s": round(offset, 3)}
    ctx.notes["timestamp_resolution_s"] = resolution
    res_text = _resolution_text(resolution)
    if skew > SKEW_WARN_S:
        side = "ahead of" if offset > 0 else "behind"
        return CheckResult(
            NAME,
            Verdict.WARN,
            f"timestamps {res_text}; the file server is {abs(offset):.1f} s {side} this machine",
            [
                (
                    "sync both clocks (Windows: w32tm /resync; macOS/Linux: enable NTP with timedatectl "
                    "set-ntp true); Envy copes, but log times and file times will disagree"
                )
            ],
            facts,
        )
    advice = []
    if resolution >= 2:
        advice.append("2 s timestamps (FAT-like): never rely on mtimes to spot quick changes; Envy does not")
    return CheckResult(
        NAME,
        Verdict.OK,
        f"timestamps {res_text}; the server's clock agrees with this machine's ({offset:+.2f} s)",
        advice,
        facts,
    )


_STEPS_NS = (1, 1_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 2_000_000_000)
# An odd second plus a fraction that shows every decimal place: what survives is the resolution.
_PROBE_FRACTION_NS = 123_456_789


def _measured_resolution(ctx: DoctorContext, path: object, natural_ns: list[int]) -> float:
    """Set an mtime with every digit used and see what the server keeps; fall back to the samples."""
    written = (int(ctx.clock()) | 1) * 1_000_000_000 + _PROBE_FRACTION_NS
    try:
        ctx.fs.set_mtime_ns(path, written)  # type: ignore[arg-type]
        kept = ctx.fs.stat(path).st_mtime_ns  # type: ignore[arg-type]
    except OSError:
        return timestamp_resolution_of_samples(natural_ns)
    return resolution_from_probe(written, kept)


def resolution_from_probe(written_ns: int, kept_ns: int) -> float:
    """The finest step that explains ``kept`` as ``written`` cut or rounded up to that step, in seconds."""
    for step in _STEPS_NS:
        down = written_ns // step * step
        nearest = (written_ns + step // 2) // step * step
        up = down if down == written_ns else down + step
        if kept_ns in (down, nearest) or (step >= 2_000_000_000 and kept_ns == up):
            return step / 1e9
    return 2.0


def timestamp_resolution_of_samples(mtimes_ns: list[int]) -> float:
    """The coarsest of 1 s, 10 ms, 1 us, ... every sample is a multiple of (never claims 2 s: too few samples)."""
    for step in reversed(_STEPS_NS[:-1]):
        if all(m % step == 0 for m in mtimes_ns):
            return step / 1e9
    return 1e-9


def _resolution_text(resolution: float) -> str:
    if resolution >= 1:
        return f"have {resolution:g} s resolution"
    if resolution >= 1e-3:
        return f"have {resolution * 1e3:g} ms resolution"
    return "are finer than a millisecond"
