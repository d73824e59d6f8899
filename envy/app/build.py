"""Build the share copy: one PEX holding Envy and its dependencies for Windows, macOS and Linux.

pex does the work (``--platform`` per OS, CPU and Python; at run time the PEX
unpacks the wheels that fit this machine into the user's own cache,
``~/.cache/pex`` or ``%LOCALAPPDATA%``, by hash, so two versions live side by
side). The wheels are downloaded once per platform into a cache folder
(``pip download --only-binary``) and pex resolves from that folder alone:
downloading inside pex's resolve, one platform after another, is slow and
gives up on one dropped connection.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PYTHONS = ("310", "311", "312", "313")  # hython: Houdini 20 is 3.10/3.11, 20.5 and 21 are 3.11
PLATFORMS = ("win_amd64", "macosx_11_0_x86_64", "macosx_11_0_arm64", "manylinux2014_x86_64", "manylinux2014_aarch64")
# tzdata and tzlocal are needed on Windows only (pyproject.toml's markers), but they are small
# pure-Python wheels: taken for every platform, so the resolve for win_amd64 does not hang on
# how pip and pex evaluate a sys_platform marker for a platform other than the building one.
REQUIREMENTS = ("psutil>=5.9", "watchdog>=3.0", "prompt_toolkit>=3.0", "pyyaml>=6.0", "tzdata", "tzlocal>=4")
PACKAGES = ("envy", "envy_io", "user_template")


class BuildError(RuntimeError):
    """The build could not be made; the message says which step and why."""


@dataclass(frozen=True)
class BuildTargets:
    pythons: tuple[str, ...] = PYTHONS
    platforms: tuple[str, ...] = PLATFORMS

    def pex_platforms(self) -> list[str]:
        return [f"{plat}-cp-{py}-cp{py}" for py in self.pythons for plat in self.platforms]


def source_root() -> Path:
    """The folder holding the envy package being built (a checkout, or an unpacked share copy)."""
    return Path(__file__).resolve().parents[2]


def default_wheel_cache() -> Path:
    base = os.environ.get("ENVY_WHEEL_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "envy" / "wheels"


def download_wheels(cache: Path, targets: BuildTargets, retries: int = 3) -> None:
    """Fill ``cache`` with binary wheels for every target (pip skips what it already has)."""
    cache.mkdir(parents=True, exist_ok=True)
    for py in targets.pythons:
        for plat in targets.platforms:
            argv = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--only-binary=:all:",
                "--platform",
                plat,
                "--python-version",
                f"{py[0]}.{py[1:]}",
                "--implementation",
                "cp",
                "-d",
                str(cache),
                *REQUIREMENTS,
            ]
            # Offline first: a full cache needs no index at all (a lookup per platform is slow).
            offline = subprocess.run(
                [*argv, "--no-index", "-f", str(cache)], capture_output=True, check=False, stdin=subprocess.DEVNULL
            )
            if offline.returncode != 0:
                _run(argv, f"download wheels for {plat} cp{py}", retries)


def stage_sources(dest: Path, version: str) -> Path:
    """Copy the packages into ``dest`` and stamp ``version`` into envy/__init__.py."""
    root = source_root()
    for pkg in PACKAGES:
        shutil.copytree(root / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    init = dest / "envy" / "__init__.py"
    text = init.read_text(encoding="utf-8")
    text, count = re.subn(r'^__version__ = ".*"$', f'__version__ = "{version}"', text, flags=re.MULTILINE)
    if count != 1:
        raise BuildError(f"{init}: no __version__ line to stamp")
    init.write_text(text, encoding="utf-8")
    return dest


def build_pex(
    out: Path, version: str, wheel_cache: Path, targets: BuildTargets = BuildTargets(), download: bool = True
) -> Path:
    """Build ``out`` (a PEX) from this source tree for every target; returns ``out``."""
    if shutil.which("pex") is None and not _pex_module_available():
        raise BuildError("pex is not installed: pip install 'envy[app]' (or pip install pex)")
    if download:
        download_wheels(wheel_cache, targets)
    with tempfile.TemporaryDirectory(prefix="envy-build-") as tmp:
        src = stage_sources(Path(tmp) / "src", version)
        argv = [
            sys.executable,
            "-m",
            "pex",
            "-D",
            str(src),
            *REQUIREMENTS,
            "--no-pypi",
            "-f",
            str(wheel_cache),
            "--no-build",
            "--pip-version",
            "25.3",
            "-e",
            "envy.app.entry:main",
            "-o",
            str(out),
        ]
        for platform in targets.pex_platforms():
            argv += ["--platform", platform]
        _run(argv, "build the PEX", retries=1)
    return out


def _pex_module_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pex") is not None


def _run(argv: list[str], what: str, retries: int) -> None:
    last = ""
    for attempt in range(retries):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if proc.returncode == 0:
            return
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]  # type: ignore[assignment]
        log.warning("%s failed (attempt %d of %d): %s", what, attempt + 1, retries, last)
    raise BuildError(f"could not {what}: {last[0] if last else ''}")


def wheels_in(pyz: Path) -> list[str]:
    """The wheel names a PEX carries (its .deps/ folder)."""
    import zipfile

    with zipfile.ZipFile(pyz) as z:
        return sorted(
            {n.split("/")[1] for n in z.namelist() if n.startswith(".deps/") and n.count("/") >= 2 and n.split("/")[1]}
        )
