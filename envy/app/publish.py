"""Publish a build on the share atomically, roll back, and say what the share runs.

A version's folder is written once: the PEX goes to a temp name and is
renamed into place, then ``current.json`` is replaced atomically (ENGINEERING
§1.2). Agents and launchers read ``current.json`` only; a half-copied PEX is
never current. Rolling back is rewriting ``current.json`` to the previous
version, which is still on the share.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from envy.app.layout import AppLayout, validate_version
from envy.share.atomic import atomic_write_json, read_json
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout, make_dirs_within
from envy.share.names import temp_name_for

_MAX_POINTER_BYTES = 4096


class PublishError(RuntimeError):
    """The share copy could not be changed; the message says why and what to do."""


@dataclass(frozen=True)
class Current:
    version: str
    previous: str | None


def read_current(app: AppLayout, fs: ShareFS) -> Current | None:
    """The published version, or None when nothing is published yet. Bounded and validated."""
    try:
        raw = fs.read_bytes(app.current)
    except FileNotFoundError:
        return None
    if len(raw) > _MAX_POINTER_BYTES:
        raise PublishError(f"{app.current}: larger than {_MAX_POINTER_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
        version = validate_version(data["version"])
        previous = data.get("previous")
        previous = validate_version(previous) if previous else None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise PublishError(f"{app.current}: not a valid version pointer ({exc})") from None
    return Current(version, previous)


def publish(share: Path, pyz: Path, version: str, fs: ShareFS, build_info: dict | None = None) -> Current:
    """Put ``pyz`` on the share as ``version`` and make it current. Publishing the same bytes again is a no-op."""
    ShareLayout(share).require(fs)
    app = AppLayout(share)
    validate_version(version)
    make_dirs_within(share, "app", "versions")
    target = app.version_pyz(version)
    digest = _sha256(pyz)
    if target.exists():
        if _sha256(target) != digest:
            raise PublishError(
                f"version {version} is already on the share with other contents: "
                f"publish under a new version (versions are never overwritten)"
            )
    else:
        make_dirs_within(app.versions, version)
        _copy_into_place(pyz, target, fs)
    info = {
        **(build_info or {}),
        "version": version,
        "sha256": digest,
        "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_json(app.build_info(version), info, fs)
    old = read_current(app, fs)
    if old is not None and old.version == version:
        return old
    current = Current(version, old.version if old else None)
    _write_current(app, current, fs)
    return current


def rollback(share: Path, fs: ShareFS, to: str | None = None) -> Current:
    """Make the previous version (or ``to``) current again."""
    app = AppLayout(share)
    now = read_current(app, fs)
    if now is None:
        raise PublishError(f"nothing is published on {share}: nothing to roll back")
    target = to or now.previous
    if target is None:
        raise PublishError(f"{now.version} has no previous version to roll back to; give --to VERSION")
    validate_version(target)
    if not app.version_pyz(target).exists():
        raise PublishError(f"version {target} is not on the share (see: envy app status)")
    current = Current(target, now.version)
    _write_current(app, current, fs)
    return current


def published_versions(app: AppLayout) -> list[str]:
    try:
        names = os.listdir(app.versions)
    except OSError:
        return []
    out = []
    for name in sorted(names):
        try:
            validate_version(name)
        except ValueError:
            continue
        if (app.versions / name / "envy.pyz").is_file():
            out.append(name)
    return out


def read_build_info(app: AppLayout, version: str, fs: ShareFS) -> dict:
    try:
        info = read_json(app.build_info(version), fs)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _write_current(app: AppLayout, current: Current, fs: ShareFS) -> None:
    atomic_write_json(
        app.current,
        {
            "version": current.version,
            "previous": current.previous,
            "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        fs,
    )


def _copy_into_place(src: Path, dst: Path, fs: ShareFS) -> None:
    temp = dst.parent / temp_name_for(dst.name)
    try:
        with open(src, "rb") as f_in, open(temp, "xb") as f_out:
            shutil.copyfileobj(f_in, f_out, 1024 * 1024)
            f_out.flush()
            os.fsync(f_out.fileno())
        fs.replace(temp, dst)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            h.update(block)
    return h.hexdigest()
