"""The sentinel and the mount: is this folder really the Envy share, and on what?"""

from __future__ import annotations

import json
from pathlib import Path

from envy.doctor.result import CheckResult, Verdict
from envy.platform.mounts import mount_of
from envy.share.fs import ShareFS
from envy.share.layout import SENTINEL, ShareLayout

NAME = "sentinel and mount"
_MAX_SENTINEL_BYTES = 64 * 1024


def check_mount(layout: ShareLayout, fs: ShareFS) -> CheckResult:
    """Runs before the probe folder exists: without a sentinel doctor writes nothing."""
    root = layout.root
    if not root.is_dir():
        return CheckResult(
            NAME,
            Verdict.FAIL,
            f"{root} is not a folder (or cannot be reached)",
            ["mount the share (on Windows: map the drive letter) and try again", f"for a new farm: envy init {root}"],
        )
    try:
        raw = fs.read_bytes(layout.sentinel)
    except FileNotFoundError:
        return CheckResult(
            NAME,
            Verdict.FAIL,
            f"no {SENTINEL} in {root}: not an Envy share, or the drive is not mounted",
            [
                "check the drive is mounted (agents wait while the sentinel is missing)",
                f"for a new farm: envy init {root}",
            ],
        )
    except OSError as exc:
        return CheckResult(
            NAME,
            Verdict.FAIL,
            f"cannot read {layout.sentinel}: {exc}",
            ["check the share is reachable and you may read it"],
        )
    info = _parse_sentinel(raw)
    mount = mount_of(root)
    measurements: dict[str, object] = {"fs_type": mount.fs_type, "kind": mount.kind, "mount_point": mount.mount_point}
    if info is None:
        return CheckResult(
            NAME,
            Verdict.FAIL,
            f"{layout.sentinel} is not a small JSON object",
            [f"move the damaged file aside and run: envy init {root} (it keeps existing files)"],
            measurements,
        )
    measurements.update({"envy": info.get("envy"), "protocol": info.get("protocol")})
    where = f" on {mount.kind} ({mount.fs_type} at {mount.mount_point})" if mount.kind != "unknown" else ""
    advice = []
    if mount.kind == "local":
        advice.append("this is a local disk: fine for one machine or a demo; lab machines need a network share")
    return CheckResult(
        NAME, Verdict.OK, f"Envy share made by envy {info.get('envy', '?')}{where}", advice, measurements
    )


def _parse_sentinel(raw: bytes) -> dict | None:
    if len(raw) > _MAX_SENTINEL_BYTES:
        return None
    try:
        info = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def second_mount_problem(layout: ShareLayout, second: Path) -> str | None:
    """Why ``second`` is not a second view of the same Envy share, or None."""
    if not second.is_dir():
        return f"--second-mount {second} is not a folder"
    if not (second / SENTINEL).exists():
        return f"--second-mount {second} has no {SENTINEL}: give the Envy folder as mounted a second time"
    return None
