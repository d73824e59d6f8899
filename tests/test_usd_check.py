"""The USD check before submit, on real USD files written with usd-core, read both ways:
with usd-core (pxr.Usd) and, as on a machine without it, .usda as text."""

from __future__ import annotations

from pathlib import Path

import pytest

pxr = pytest.importorskip("pxr", reason="usd-core (the 'test' extra) writes the USD files of these tests")
from pxr import Sdf, Usd, UsdGeom, UsdRender  # noqa: E402

from envy.share.fs import REAL_FS  # noqa: E402
from envy.usd.check import (  # noqa: E402
    UsdCheckError,
    UsdFileProblem,
    check_usd_file,
    check_usd_folder,
)

BOTH_READERS = pytest.mark.parametrize("use_usd_core", [True, False], ids=["usd-core", "text"])


def write_shot(path: Path, frame: float | None, *, settings: str | None = "/rendersettings",
               settings_type: str = "RenderSettings", samples: tuple[float, ...] = (), time_code: bool = True) -> Path:
    """A top-level USD file as a USD ROP writes it per frame: the time code, a camera, a moving box."""
    stage = Usd.Stage.CreateNew(str(path))
    if frame is not None and time_code:
        stage.SetStartTimeCode(frame)
        stage.SetEndTimeCode(frame)
    if settings:
        if settings_type == "RenderSettings":
            UsdRender.Settings.Define(stage, settings)
        else:
            stage.DefinePrim(settings, settings_type)
    UsdGeom.Camera.Define(stage, "/cameras/cam")
    box = UsdGeom.Cube.Define(stage, "/world/box")
    op = box.AddTranslateOp()
    for t in samples or ((frame,) if frame is not None else ()):
        op.Set((t, 0.0, 0.0), Usd.TimeCode(t))
    stage.GetRootLayer().customLayerData = {"note": "braces { } and \"quotes\" in a string"}
    stage.Save()
    return path


@BOTH_READERS
def test_frames_come_from_the_time_code_and_the_settings_prim_is_found(tmp_path: Path, use_usd_core: bool) -> None:
    for f in (1, 2, 3):
        write_shot(tmp_path / f"shot.{f:04d}.usda", f)
    frames = check_usd_folder(tmp_path, use_usd_core=use_usd_core, fs=REAL_FS)
    assert [(f.path.name, f.frame, f.frame_from) for f in frames] == [
        ("shot.0001.usda", 1, "time code"), ("shot.0002.usda", 2, "time code"), ("shot.0003.usda", 3, "time code"),
    ]


@BOTH_READERS
def test_time_code_wins_over_the_file_name_and_a_single_time_sample_is_a_frame(
    tmp_path: Path, use_usd_core: bool
) -> None:
    # A ROP with a frame offset: the file says 101, the name says 1. husk must render time 101.
    assert check_usd_file(write_shot(tmp_path / "shot.0001.usda", 101), use_usd_core).frame == 101
    only_sample = write_shot(tmp_path / "still.usda", 7, time_code=False)
    assert (check_usd_file(only_sample, use_usd_core).frame, check_usd_file(only_sample, use_usd_core).frame_from) == (
        7, "time sample")


@BOTH_READERS
def test_motion_blur_samples_fall_back_to_the_file_name(tmp_path: Path, use_usd_core: bool) -> None:
    path = write_shot(tmp_path / "shot.0012.usda", None, samples=(11.75, 12.0, 12.25))
    found = check_usd_file(path, use_usd_core)
    assert (found.frame, found.frame_from) == (12, "file name")
    no_number = write_shot(tmp_path / "blur.usda", None, samples=(11.75, 12.0, 12.25))
    with pytest.raises(UsdFileProblem, match="time samples from 11.75 to 12.25"):
        check_usd_file(no_number, use_usd_core)


@BOTH_READERS
def test_missing_or_wrong_settings_prim_and_non_usd_files_are_named_with_reasons(
    tmp_path: Path, use_usd_core: bool
) -> None:
    write_shot(tmp_path / "shot.0001.usda", 1)
    write_shot(tmp_path / "shot.0002.usda", 2, settings="/Render/rendersettings")  # the Solaris default path
    write_shot(tmp_path / "shot.0003.usda", 3, settings_type="Xform")
    (tmp_path / "shot.0004.usda").write_text("this is not USD at all\n")
    write_shot(tmp_path / "shot.0005.usda", 1)  # frame 1 again
    (tmp_path / "notes.txt").write_text("ignored: not a USD file name")
    with pytest.raises(UsdCheckError) as err:
        check_usd_folder(tmp_path, use_usd_core=use_usd_core, fs=REAL_FS)
    problems = dict(err.value.problems)
    assert set(problems) == {"shot.0002.usda", "shot.0003.usda", "shot.0004.usda", "shot.0005.usda"}
    assert (
        "no /rendersettings prim" in problems["shot.0002.usda"]
        and "found /Render/rendersettings" in problems["shot.0002.usda"]
    )
    assert "is a Xform prim, not RenderSettings" in problems["shot.0003.usda"]
    assert "not a" in problems["shot.0004.usda"] and "USD file" in problems["shot.0004.usda"]
    assert "frame 1 is also shot.0001.usda" in problems["shot.0005.usda"]
    message = str(err.value)
    assert "\n" not in message and "nothing submitted" in message and "shot.0004.usda" in message


def test_binary_crate_file_without_usd_core_gives_one_line_naming_the_extra(tmp_path: Path) -> None:
    crate = write_shot(tmp_path / "shot.0001.usd", 1)  # .usd written by usd-core is a binary crate file
    assert crate.read_bytes().startswith(b"PXR-USDC")
    with pytest.raises(UsdFileProblem) as err:
        check_usd_file(crate, use_usd_core=False)
    assert "envy[usd]" in str(err.value) and "\n" not in str(err.value)
    assert check_usd_file(crate, use_usd_core=True).frame == 1  # and with usd-core it is read properly


def test_settings_prim_from_a_sublayer_is_seen_with_usd_core_and_explained_without(tmp_path: Path) -> None:
    settings = Sdf.Layer.CreateNew(str(tmp_path / "settings.usda"))
    stage = Usd.Stage.Open(settings)
    UsdRender.Settings.Define(stage, "/rendersettings")
    settings.Save()
    top = write_shot(tmp_path / "shot.0001.usda", 1, settings=None)
    layer = Sdf.Layer.FindOrOpen(str(top))
    layer.subLayerPaths.append("settings.usda")
    layer.Save()
    assert check_usd_file(top, use_usd_core=True).frame == 1
    with pytest.raises(UsdFileProblem, match=r"only read with usd-core .*envy\[usd\]"):
        check_usd_file(top, use_usd_core=False)


def test_empty_folder_or_pattern_without_matches_is_an_error(tmp_path: Path) -> None:
    from envy.render.jobs import JobError

    with pytest.raises(JobError, match="no USD files"):
        check_usd_folder(tmp_path, fs=REAL_FS)
    write_shot(tmp_path / "shot.0001.usda", 1)
    write_shot(tmp_path / "camera.usda", None, settings=None)  # a layer beside the frames, not a frame
    with pytest.raises(UsdCheckError):
        check_usd_folder(tmp_path, fs=REAL_FS)
    assert [f.frame for f in check_usd_folder(tmp_path, pattern="shot.*.usda", fs=REAL_FS)] == [1]
