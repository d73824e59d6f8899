"""What the share copy carries and which wheels it accepts, checked without building it (fast).

envy/app/build.py keeps its own list of requirements (a share copy unpacked on a
machine has no pyproject.toml to read): it must name every runtime dependency,
or an agent run from the copy meets "No module named 'PIL'" (issue 13).
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging import tags
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from envy.app.build import PLATFORMS, PYTHONS, REQUIREMENTS, BuildTargets, compatible_tags, marker_environment

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _runtime_dependencies() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(dep) for dep in project["dependencies"]]


def test_the_copy_names_every_runtime_dependency_of_pyproject_with_its_version_range() -> None:
    carried = {canonicalize_name(r.name): r for r in map(Requirement, REQUIREMENTS)}
    for dep in _runtime_dependencies():
        name = canonicalize_name(dep.name)
        assert name in carried, f"pyproject.toml needs {dep} but envy/app/build.py's REQUIREMENTS lack {dep.name}"
        assert carried[name].specifier == dep.specifier, (str(dep), str(carried[name]))
    # And nothing the product does not ask for (a leftover would be shipped to every machine).
    assert set(carried) == {canonicalize_name(d.name) for d in _runtime_dependencies()}
    assert all(Requirement(r).marker is None for r in REQUIREMENTS)  # markers: see build.py


def test_each_target_accepts_the_tags_packaging_computes_for_it() -> None:
    """Our tag lists are what packaging.tags gives CPython on those platforms, in the same order."""
    for py in PYTHONS:
        version = (int(py[0]), int(py[1:]))
        for plat in PLATFORMS:
            ours = compatible_tags(py, plat)
            plats = ours_platforms = list(dict.fromkeys(t.split("-")[2] for t in ours if not t.endswith("-any")))
            want = [*tags.cpython_tags(version, [f"cp{py}"], plats), *tags.compatible_tags(version, f"cp{py}", plats)]
            assert ours == [str(t) for t in want], (py, plat)
            assert ours_platforms[0] == plat


def test_the_linux_targets_take_manylinux2014_and_pep600_wheels_and_the_mac_ones_older_releases() -> None:
    linux = compatible_tags("313", "manylinux_2_28_x86_64")
    for tag in ("py3-none-manylinux2014_x86_64",  # watchdog
                "cp313-cp313-manylinux_2_27_x86_64",  # google-re2
                "cp36-abi3-manylinux_2_12_x86_64",  # psutil
                "cp313-cp313-manylinux_2_17_x86_64"):
        assert tag in linux
    assert not any("manylinux_2_29" in t or "aarch64" in t for t in linux)
    mac = compatible_tags("310", "macosx_13_0_x86_64")
    for tag in ("cp310-cp310-macosx_13_0_x86_64", "cp310-cp310-macosx_10_9_x86_64",
                "cp310-cp310-macosx_11_0_universal2"):
        assert tag in mac
    assert not any("macosx_14" in t or "arm64" in t for t in mac)
    arm = compatible_tags("311", "macosx_14_0_arm64")
    assert "cp311-cp311-macosx_11_0_arm64" in arm and not any("x86_64" in t for t in arm)
    assert compatible_tags("312", "win_amd64")[0] == "cp312-cp312-win_amd64"


def test_each_complete_platform_has_its_os_markers() -> None:
    assert marker_environment("313", "win_amd64")["sys_platform"] == "win32"
    assert marker_environment("310", "macosx_14_0_arm64")["platform_machine"] == "arm64"
    linux = marker_environment("312", "manylinux_2_28_aarch64")
    assert (linux["sys_platform"], linux["platform_machine"], linux["python_version"]) == ("linux", "aarch64", "3.12")
    assert len(BuildTargets().complete_platforms()) == len(PYTHONS) * len(PLATFORMS)
