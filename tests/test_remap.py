"""--remap rules: converting job paths for the OS of the agent that renders them."""

from __future__ import annotations

import pytest

from envy.render.profiles import current_os
from envy.render.remap import PathRemap, RemapError

WINDOWS_TO_POSIX = PathRemap.parse(
    [
        "P:/,/mnt/renders/",
        "P:/projects/big,/mnt/big",  # longer prefix: must win over P:/
        r"\\server\share,/mnt/share",
    ]
)
POSIX_TO_WINDOWS = PathRemap.parse(["/mnt/renders/,P:/", r"/mnt/share,\\server\share"])


@pytest.mark.parametrize(
    ("remap", "path", "target_os", "expected"),
    [
        # drive letters, either slash, either case
        (WINDOWS_TO_POSIX, r"P:\shot\a.vrscene", "linux", "/mnt/renders/shot/a.vrscene"),
        (WINDOWS_TO_POSIX, "p:/shot/a.vrscene", "linux", "/mnt/renders/shot/a.vrscene"),
        (WINDOWS_TO_POSIX, r"p:\shot/mixed\a.vrscene", "darwin", "/mnt/renders/shot/mixed/a.vrscene"),
        (WINDOWS_TO_POSIX, r"P:\Shot\A.VRSCENE", "linux", "/mnt/renders/Shot/A.VRSCENE"),  # rest keeps its case
        (WINDOWS_TO_POSIX, r"P:\my shots\a b.blend", "linux", "/mnt/renders/my shots/a b.blend"),
        (WINDOWS_TO_POSIX, "P:", "linux", "/mnt/renders/"),
        # longest prefix first, and prefixes end at a separator
        (WINDOWS_TO_POSIX, r"P:\projects\big\x.ass", "linux", "/mnt/big/x.ass"),
        (WINDOWS_TO_POSIX, r"P:\projects\bigger\x.ass", "linux", "/mnt/renders/projects/bigger/x.ass"),
        # UNC paths
        (WINDOWS_TO_POSIX, r"\\server\share\x\y.rib", "linux", "/mnt/share/x/y.rib"),
        (WINDOWS_TO_POSIX, r"\\SERVER\Share\x", "linux", "/mnt/share/x"),
        (WINDOWS_TO_POSIX, "//server/share/x", "linux", "/mnt/share/x"),
        (POSIX_TO_WINDOWS, "/mnt/share/x/y.rib", "windows", r"\\server\share\x\y.rib"),
        # POSIX to Windows
        (POSIX_TO_WINDOWS, "/mnt/renders/shot/a.vrscene", "windows", r"P:\shot\a.vrscene"),
        (POSIX_TO_WINDOWS, "/MNT/Renders/shot/a.vrscene", "windows", r"P:\shot\a.vrscene"),
        (POSIX_TO_WINDOWS, "/mnt/rendersX/a.vrscene", "windows", r"\mnt\rendersX\a.vrscene"),
        # no rule matches: only the separators change
        (WINDOWS_TO_POSIX, r"Q:\other\f.blend", "linux", "Q:/other/f.blend"),
        (WINDOWS_TO_POSIX, "/home/u/f.blend", "windows", r"\home\u\f.blend"),
        (PathRemap(()), r"P:\shot\a.ass", "windows", r"P:\shot\a.ass"),
        (PathRemap(()), r"P:\shot\a.ass", "linux", "P:/shot/a.ass"),
        # a root rule moves every absolute path
        (PathRemap.parse(["/,Z:/"]), "/jobs/a.pov", "windows", r"Z:\jobs\a.pov"),
    ],
)
def test_remap_cases(remap: PathRemap, path: str, target_os: str, expected: str) -> None:
    assert remap.apply(path, target_os) == expected


def test_default_target_is_this_machine() -> None:
    remap = PathRemap.parse(["P:/,/mnt/renders/"])
    assert remap.apply(r"P:\a\b.pov") == remap.apply(r"P:\a\b.pov", current_os())


def test_parse_strips_spaces_around_the_comma() -> None:
    assert PathRemap.parse(["P:/ , /mnt/renders/"]).rules == (("P:/", "/mnt/renders/"),)


@pytest.mark.parametrize("spec", ["P:/", "P:/,/mnt/a,/mnt/b", ",/mnt/renders", "P:/,", " , "])
def test_bad_spec_is_one_line_error_naming_the_spec(spec: str) -> None:
    with pytest.raises(RemapError) as caught:
        PathRemap.parse([spec])
    message = str(caught.value)
    assert "\n" not in message
    assert repr(spec) in message


def test_unknown_target_os_is_an_error() -> None:
    with pytest.raises(RemapError, match="solaris"):
        PathRemap(()).apply("/a", "solaris")
