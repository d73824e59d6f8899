"""Run the checks in order; the probe folder exists only between the first check and the last."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from envy.doctor.case_check import check_case
from envy.doctor.clock_check import check_clock
from envy.doctor.context import DoctorContext, probe_folder
from envy.doctor.latency_check import check_latency
from envy.doctor.mount_check import check_mount
from envy.doctor.permissions_check import check_permissions
from envy.doctor.rename_check import check_renames
from envy.doctor.result import CheckResult, Verdict
from envy.doctor.space_check import check_space
from envy.doctor.visibility_check import check_visibility
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

log = logging.getLogger(__name__)

ProbeCheck = Callable[[DoctorContext], CheckResult]


def run_doctor(
    share: Path,
    fs: ShareFS,
    second_mount: Path | None = None,
    visibility_wait: float = 30.0,
    dead_after: float = 30.0,
    heartbeat: float = 5.0,
    on_result: Callable[[CheckResult], None] = lambda r: None,
) -> list[CheckResult]:
    """Every check's result, in order; ``on_result`` sees each as soon as it is known."""
    layout = ShareLayout(share)
    results: list[CheckResult] = []

    def add(result: CheckResult) -> None:
        results.append(result)
        on_result(result)

    mount = check_mount(layout, fs)
    add(mount)
    probe_checks: list[tuple[str, ProbeCheck]] = [
        ("rename atomicity and no-replace", check_renames),
        ("case sensitivity", check_case),
        ("timestamps and server clock", check_clock),
        ("visibility between clients", lambda ctx: check_visibility(ctx, dead_after=dead_after, heartbeat=heartbeat)),
        ("latency", check_latency),
    ]
    if mount.verdict is Verdict.FAIL:
        for name in ["permissions", "free space", *(n for n, _ in probe_checks)]:
            add(
                CheckResult(
                    name, Verdict.SKIP, "skipped: no Envy share here (doctor writes nothing without the sentinel)"
                )
            )
        return results
    add(_guarded("permissions", lambda: check_permissions(layout, fs)))
    add(_guarded("free space", lambda: check_space(layout)))
    with probe_folder(layout.root) as probe:
        ctx = DoctorContext(
            layout,
            fs,
            probe,
            second_mount=second_mount,
            visibility_wait=visibility_wait,
            clock=time.time,
            monotonic=time.monotonic,
        )
        for name, check in probe_checks:
            add(_guarded(name, lambda check=check: check(ctx)))  # type: ignore[misc]
    return results


def _guarded(name: str, run: Callable[[], CheckResult]) -> CheckResult:
    """A check that hits an error has found a problem with the share; it never stops the others."""
    try:
        return run()
    except OSError as exc:
        log.debug("check %s failed", name, exc_info=True)
        return CheckResult(
            name,
            Verdict.FAIL,
            f"the share failed the check: {exc.__class__.__name__}: {exc}",
            ["an ordinary file operation failed here: check the mount and your access to the share"],
        )
