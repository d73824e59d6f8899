"""Printing doctor's results for people (one block per check) and for scripts (JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from envy.doctor.result import CheckResult, Verdict, worst

_LABEL = {Verdict.OK: "  ok", Verdict.WARN: "warn", Verdict.FAIL: "FAIL", Verdict.SKIP: "skip"}


def print_result(result: CheckResult, out: TextIO) -> None:
    print(f"[{_LABEL[result.verdict]}] {result.name}: {result.result}", file=out)
    for line in result.advice:
        print(f"       -> {line}", file=out)
    out.flush()


def print_summary(results: list[CheckResult], out: TextIO) -> None:
    counts = {v: sum(r.verdict is v for r in results) for v in Verdict}
    verdict = worst(results)
    headline = {
        Verdict.FAIL: "NOT fit for a farm until the FAIL lines are fixed",
        Verdict.WARN: "usable; the warn lines say what would make it better",
        Verdict.SKIP: "fit for a farm (some checks skipped)",
        Verdict.OK: "fit for a farm",
    }[verdict]
    print(
        f"\n{headline} ({counts[Verdict.OK]} ok, {counts[Verdict.WARN]} warn, "
        f"{counts[Verdict.FAIL]} fail, {counts[Verdict.SKIP]} skipped)",
        file=out,
    )


def as_json(share: Path, second_mount: Path | None, results: list[CheckResult]) -> str:
    return json.dumps(
        {
            "share": str(share),
            "second_mount": str(second_mount) if second_mount else None,
            "verdict": worst(results).value,
            "checks": [r.as_json() for r in results],
        },
        indent=1,
    )
