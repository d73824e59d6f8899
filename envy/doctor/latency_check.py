"""Latency of the operations an idle agent repeats: a stat, a small read, a rename."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from envy.doctor.context import DoctorContext
from envy.doctor.result import CheckResult, Verdict

NAME = "latency"
_ROUNDS = 20
WARN_MEDIAN_MS = 50.0  # a lab LAN answers in about 1 ms; 50 ms makes every claim walk slow


def check_latency(ctx: DoctorContext) -> CheckResult:
    fs, probe = ctx.fs, ctx.probe
    small = probe / "small.txt"
    fs.write_new(small, b"x" * 200)
    a, b = probe / "flip-a", probe / "flip-b"
    fs.write_new(a, b"flip")
    names = [a, b]

    def rename_once() -> None:
        fs.rename(names[0], names[1])
        names.reverse()

    results = {
        "stat": _time(ctx, lambda: fs.stat(ctx.layout.sentinel)),
        "small_read": _time(ctx, lambda: fs.read_bytes(small)),
        "rename": _time(ctx, rename_once),
    }
    facts: dict[str, object] = {}
    for op, samples in results.items():
        facts[f"{op}_median_ms"] = round(statistics.median(samples), 3)
        facts[f"{op}_max_ms"] = round(max(samples), 3)
    text = (
        ", ".join(f"{op.replace('_', ' ')} {statistics.median(s):.2f} ms" for op, s in results.items())
        + f" (median of {_ROUNDS})"
    )
    slow = [op for op, s in results.items() if statistics.median(s) > WARN_MEDIAN_MS]
    if slow:
        return CheckResult(
            NAME,
            Verdict.WARN,
            text,
            [
                (
                    f"{', '.join(slow)} slower than {WARN_MEDIAN_MS:g} ms: is the share over Wi-Fi or a VPN? "
                    "raise poll_interval so idle agents cost the server less"
                )
            ],
            facts,
        )
    return CheckResult(NAME, Verdict.OK, text, [], facts)


def _time(ctx: DoctorContext, op: Callable[[], object]) -> list[float]:
    samples = []
    for _ in range(_ROUNDS):
        t0 = ctx.monotonic()
        op()
        samples.append((ctx.monotonic() - t0) * 1000)
    return samples
