"""Case sensitivity: does ``Probe`` find ``probe``, and do any Envy names clash by case?"""

from __future__ import annotations

from collections import defaultdict

from envy.doctor.context import DoctorContext
from envy.doctor.result import CheckResult, Verdict
from envy.share.names import is_junk

NAME = "case sensitivity"


def check_case(ctx: DoctorContext) -> CheckResult:
    fs = ctx.fs
    fs.write_new(ctx.probe / "CaseProbe.txt", b"case")
    insensitive = fs.exists(ctx.probe / "caseprobe.txt")
    facts: dict[str, object] = {"case_insensitive": insensitive}
    clashes = _case_clashes(ctx)
    facts["clashes"] = clashes
    kind = "case-insensitive (like SMB and macOS)" if insensitive else "case-sensitive (like NFS and Linux)"
    if clashes:
        return CheckResult(
            NAME,
            Verdict.WARN,
            f"{kind}; names that differ only by case: {', '.join(clashes)}",
            ["Windows and macOS machines see these as one name: rename or remove one of each pair"],
            facts,
        )
    advice = (
        []
        if insensitive
        else [
            (
                "Envy compares host and user names case-insensitively; keep folder names lower-case so "
                "Windows and macOS machines see the same names"
            )
        ]
    )
    return CheckResult(NAME, Verdict.OK, kind, advice, facts)


def _case_clashes(ctx: DoctorContext) -> list[str]:
    found: list[str] = []
    for folder in (ctx.layout.users_dir, ctx.layout.status_dir, ctx.layout.jobs_dir):
        try:
            names = [n for n in ctx.fs.listdir(folder) if not is_junk(n)]
        except OSError:
            continue
        groups: dict[str, list[str]] = defaultdict(list)
        for n in names:
            groups[n.casefold()].append(n)
        found += [f"{folder.name}/{' & '.join(sorted(g))}" for g in groups.values() if len(g) > 1]
    return found
