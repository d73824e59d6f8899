"""Free space on the share: frames, caches and logs all land there."""

from __future__ import annotations

import shutil

from envy.doctor.result import CheckResult, Verdict
from envy.share.layout import ShareLayout

NAME = "free space"
FAIL_BELOW_BYTES = 500 * 1024**2
WARN_BELOW_BYTES = 5 * 1024**3
WARN_BELOW_FRACTION = 0.05


def check_space(layout: ShareLayout) -> CheckResult:
    try:
        usage = shutil.disk_usage(layout.root)
    except OSError as exc:
        return CheckResult(
            NAME,
            Verdict.SKIP,
            f"the share does not report its space: {exc}",
            ["ask the file server's admin how much space the share has"],
        )
    facts = {"free_bytes": usage.free, "total_bytes": usage.total}
    if usage.total == 0:  # e.g. smbnetfs answers statvfs with zeros: it does not know, it is not full
        return CheckResult(
            NAME, Verdict.SKIP, "the share's client reports no size (0 bytes of 0): free space is unknown",
            ["ask the file server's admin how much space the share has, or check it on a machine that "
             "mounts the share another way (Windows, kernel CIFS)"], facts,
        )
    free_gb = usage.free / 1024**3
    text = f"{free_gb:.1f} GB free of {usage.total / 1024**3:.1f} GB"
    if usage.free < FAIL_BELOW_BYTES:
        return CheckResult(
            NAME, Verdict.FAIL, text, ["free space: renders and logs will fail to write (ENOSPC)"], facts
        )
    if usage.free < WARN_BELOW_BYTES or (usage.total and usage.free / usage.total < WARN_BELOW_FRACTION):
        return CheckResult(
            NAME, Verdict.WARN, text, ["free space before a big render: a frame that cannot be written fails"], facts
        )
    return CheckResult(NAME, Verdict.OK, text, [], facts)
