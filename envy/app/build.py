"""Build the share copy: one PEX holding Envy and its dependencies for Windows, macOS and Linux.

pex does the work (a ``--complete-platform`` per OS, CPU and Python, spelling out
every wheel tag the target accepts; at run time the PEX
unpacks the wheels that fit this machine into the user's own cache,
``~/.cache/pex`` or ``%LOCALAPPDATA%``, by hash, so two versions live side by
side). The wheels are downloaded once per platform into a cache folder
(``pip download --only-binary``) and pex resolves from that folder alone:
downloading inside pex's resolve, one platform after another, is slow and
gives up on one dropped connection.
"""

from __future__ import annotations

import json
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
# One wheel platform per OS and CPU: the newest OS release the copy needs, the tag each machine must
# at least match (docs/admin-guide.md states them). They are the oldest tags for which every
# requirement has a wheel for every Python: google-re2 has none for cp313 below macOS 13 (x86_64)
# or 14 (arm64) nor below glibc 2.27 (manylinux_2_27/2_28), and pillow and numpy also build for 2.28.
PLATFORMS = (
    "win_amd64",
    "macosx_13_0_x86_64",
    "macosx_14_0_arm64",
    "manylinux_2_28_x86_64",
    "manylinux_2_28_aarch64",
)
# Every runtime dependency of pyproject.toml, without its markers (a drift test compares them: this
# module also runs from an unpacked share copy, where there is no pyproject.toml to read).
# tzdata and tzlocal are needed on Windows only (pyproject.toml's markers), but they are small
# pure-Python wheels: taken for every platform, so the resolve for win_amd64 does not hang on
# how pip and pex evaluate a sys_platform marker for a platform other than the building one.
REQUIREMENTS = (
    "psutil>=5.9",
    "watchdog>=3.0",
    "prompt_toolkit>=3.0",
    "pyyaml>=6.0",
    "starlette>=0.37",
    "uvicorn>=0.29",
    "pillow>=10.0",
    "OpenEXR>=3.3",
    "numpy>=1.24",
    "google-re2>=1.1",
    "tzdata",
    "tzlocal>=4",
)
PEX_PIP = "25.3"  # the pip pex resolves with (--pip-version); a wheel of it goes into the cache folder
PACKAGES = ("envy", "envy_io", "user_template")


class BuildError(RuntimeError):
    """The build could not be made; the message says which step and why."""


def wheel_platforms(platform: str) -> list[str]:
    """Every wheel platform tag a machine matching ``platform`` runs, newest first.

    pip's ``--platform`` and pex's abbreviated platforms do not expand a PEP 600 tag
    (``manylinux_2_28_x86_64`` does not take watchdog's ``manylinux2014`` wheel), so
    the list is spelled out: older macOS releases and universal2, older glibc and the
    legacy manylinux names.
    """
    if platform.startswith("macosx_"):
        _, major, _minor, arch = platform.split("_", 3)
        tags = [t for m in range(int(major), 10, -1) for t in (f"macosx_{m}_0_{arch}", f"macosx_{m}_0_universal2")]
        if arch == "x86_64":
            tags += [t for m in range(16, 8, -1) for t in (f"macosx_10_{m}_x86_64", f"macosx_10_{m}_universal2",
                                                           f"macosx_10_{m}_intel")]
        return tags
    if platform.startswith("manylinux_"):
        _, _, glibc, arch = platform.split("_", 3)
        tags = [f"manylinux_2_{g}_{arch}" for g in range(int(glibc), 16, -1)] + [f"manylinux2014_{arch}"]
        if arch == "x86_64":
            tags += ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64"]
        return tags
    return [platform]


def compatible_tags(python: str, platform: str) -> list[str]:
    """PEP 425 tags a CPython ``python`` ("313") on ``platform`` accepts, most specific first
    (the order of packaging.tags: its own ABI, abi3 back to 3.2, none, then pure Python)."""
    plats = wheel_platforms(platform)
    minor = int(python[1:])
    cp = f"cp{python}"
    tags = [f"{cp}-{cp}-{p}" for p in plats] + [f"{cp}-abi3-{p}" for p in plats] + [f"{cp}-none-{p}" for p in plats]
    tags += [f"cp3{m}-abi3-{p}" for m in range(minor - 1, 1, -1) for p in plats]
    pys = [f"py3{minor}", "py3", *[f"py3{m}" for m in range(minor - 1, -1, -1)]]
    tags += [f"{py}-none-{p}" for py in pys for p in plats]
    tags += [f"{cp}-none-any"] + [f"{py}-none-any" for py in pys]
    return tags


def marker_environment(python: str, platform: str) -> dict[str, str]:
    """The PEP 508 markers of ``platform`` with CPython ``python``, for pex's complete platform."""
    arch = platform.split("_", 3)[-1] if not platform.startswith("win") else "AMD64"
    system, sys_platform, os_name = {
        "win": ("Windows", "win32", "nt"),
        "mac": ("Darwin", "darwin", "posix"),
        "man": ("Linux", "linux", "posix"),
    }[platform[:3]]
    return {
        "implementation_name": "cpython",
        "os_name": os_name,
        "platform_machine": arch,
        "platform_python_implementation": "CPython",
        "platform_system": system,
        "python_version": f"{python[0]}.{python[1:]}",
        "sys_platform": sys_platform,
    }


@dataclass(frozen=True)
class BuildTargets:
    pythons: tuple[str, ...] = PYTHONS
    platforms: tuple[str, ...] = PLATFORMS

    def pairs(self) -> list[tuple[str, str]]:
        return [(py, plat) for py in self.pythons for plat in self.platforms]

    def complete_platforms(self) -> list[str]:
        """One pex ``--complete-platform`` JSON per target: its markers and every tag it accepts."""
        return [
            json.dumps(
                {"marker_environment": marker_environment(py, plat), "compatible_tags": compatible_tags(py, plat)}
            )
            for py, plat in self.pairs()
        ]


def source_root() -> Path:
    """The folder holding the envy package being built (a checkout, or an unpacked share copy)."""
    return Path(__file__).resolve().parents[2]


def default_wheel_cache() -> Path:
    base = os.environ.get("ENVY_WHEEL_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "envy" / "wheels"


def pex_pip_requirements() -> list[str]:
    """pip ``PEX_PIP`` and the setuptools and wheel pex pairs with it (pex's own table, so a new
    pex release brings its own pins); the pip alone where pex keeps no such table."""
    try:
        from pex.pip.version import PipVersion  # type: ignore[import-untyped]  # pex ships no type information

        return [str(r) for r in PipVersion.for_value(PEX_PIP).requirements]
    except (ImportError, AttributeError, ValueError):
        return [f"pip=={PEX_PIP}"]


def download_wheels(cache: Path, targets: BuildTargets, retries: int = 3) -> None:
    """Fill ``cache`` with binary wheels for every target (pip skips what it already has)."""
    cache.mkdir(parents=True, exist_ok=True)
    # The pip that pex resolves with, and what pex installs beside it: with --no-pypi, pex looks
    # for them in the cache folder too, and a machine whose pex cache is empty (a clean CI
    # machine, a new admin) has them nowhere else.
    _download(cache, pex_pip_requirements(), [], f"download pip {PEX_PIP} for pex", retries)
    for py, plat in targets.pairs():
        target = [arg for tag in wheel_platforms(plat) for arg in ("--platform", tag)]
        target += ["--python-version", f"{py[0]}.{py[1:]}", "--implementation", "cp"]
        _download(cache, list(REQUIREMENTS), target, f"download wheels for {plat} cp{py}", retries)


def _download(cache: Path, requirements: list[str], target: list[str], what: str, retries: int) -> None:
    """``pip download`` of binary wheels into ``cache``, offline first: a full cache needs no
    index at all (a lookup per platform is slow)."""
    argv = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", *target, "-d", str(cache),
            *requirements]
    offline = subprocess.run(
        [*argv, "--no-index", "-f", str(cache)], capture_output=True, check=False, stdin=subprocess.DEVNULL
    )
    if offline.returncode != 0:
        _run(argv, what, retries)


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
            PEX_PIP,
            "-e",
            "envy.app.entry:main",
            "-o",
            str(out),
        ]
        for platform in targets.complete_platforms():
            argv += ["--complete-platform", platform]
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
