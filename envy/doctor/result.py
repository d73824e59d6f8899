"""What a check found: its verdict, one line of result, and what to do about it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Verdict(str, enum.Enum):
    OK = "ok"
    WARN = "warn"  # works, but the farm will be slower or less safe than it could be
    FAIL = "fail"  # the farm will misbehave here until this is fixed
    SKIP = "skip"  # could not be checked (says why and how to check it)


@dataclass
class CheckResult:
    name: str
    verdict: Verdict
    result: str
    advice: list[str] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "verdict": self.verdict.value,
            "result": self.result,
            "advice": list(self.advice),
            "measurements": dict(self.measurements),
        }


def worst(results: list[CheckResult]) -> Verdict:
    order = [Verdict.OK, Verdict.SKIP, Verdict.WARN, Verdict.FAIL]
    return max((r.verdict for r in results), key=order.index, default=Verdict.OK)
