"""Progress and error parsing of renderer output.

POV-Ray and Blender outputs in tests/data/renderer_output were recorded from real renders
(Debian packages); the POV-Ray tests marked `povray` also render for real. V-Ray, Redshift,
Arnold, RenderMan and Houdini are commercial: their outputs are reconstructed from public
sources (each file's header says which), so those tests check parsing of recorded output,
not real renders.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import require_tool
from envy.render.profiles import builtin_profiles
from envy.render.progress import MAX_LINE, ProgressParser

DATA = Path(__file__).parent / "data" / "renderer_output"
MARK = b"# --- output below, byte for byte ---\n"
PROFILES = builtin_profiles()
SEEDS = range(8)

# The scene recorded in povray_still.txt.
SCENE = """\
#version 3.7;
global_settings { assumed_gamma 1.0 }
camera { location <0, 2, -5> look_at <0, 0.5, 0> }
light_source { <5, 10, -10> color rgb 1 }
plane { y, 0 pigment { checker rgb 1 rgb 0.2 } }
sphere { <0, 1, 0>, 1 pigment { rgb <1, 0.3, 0.2> } finish { phong 0.6 } }
"""


def recorded(name: str) -> str:
    raw = (DATA / name).read_bytes()
    header, found, body = raw.partition(MARK)
    assert found and header.startswith(b"# "), f"{name} needs a '# ' header saying where it came from"
    return body.decode("utf-8")


def feed_in_chunks(renderer: str, text: str, seed: int) -> tuple[list[str], list[float], ProgressParser]:
    """Feed ``text`` in random chunks; return the lines, the percents seen after each chunk, the parser."""
    rng = random.Random(seed)
    parser = ProgressParser(PROFILES[renderer])
    lines: list[str] = []
    seen: list[float] = []
    position = 0
    while position < len(text):
        size = rng.choice([1, 2, 3, rng.randint(1, 64), rng.randint(64, 4096)])
        lines += parser.feed(text[position : position + size])
        position += size
        if parser.percent is not None and (not seen or seen[-1] != parser.percent):
            seen.append(parser.percent)
    lines += parser.flush()
    return lines, seen, parser


def _per_char(renderer: str, text: str) -> list[float]:
    """The distinct percents in order, fed one character at a time (every line completes alone)."""
    parser = ProgressParser(PROFILES[renderer])
    seen: list[float] = []
    for char in text:
        parser.feed(char)
        if parser.percent is not None and (not seen or seen[-1] != parser.percent):
            seen.append(parser.percent)
    return seen


def is_subsequence(part: list[float], whole: list[float]) -> bool:
    remaining = iter(whole)
    return all(any(value == candidate for candidate in remaining) for value in part)


def check_recording(renderer: str, name: str, expected: list[float]) -> None:
    text = recorded(name)
    assert _per_char(renderer, text) == pytest.approx(expected)
    whole = ProgressParser(PROFILES[renderer])
    expected_lines = whole.feed(text) + whole.flush()
    assert expected_lines == re.split(r"\r\n|\r|\n", text.removesuffix("\n"))
    for seed in SEEDS:
        lines, seen, parser = feed_in_chunks(renderer, text, seed)
        assert lines == expected_lines
        assert is_subsequence(seen, _per_char(renderer, text))
        assert parser.percent == pytest.approx(expected[-1])
        assert parser.error is None, f"false alarm in {name}: {parser.error}"


# --- recorded from real renders ------------------------------------------------------------


def test_povray_progress_from_real_recorded_output() -> None:
    # 640x480 = 307200 pixels, reported every 1024 pixels, on lines ended by "\r".
    expected = [100.0 * 1024 * k / 307200 for k in range(1, 301)]
    check_recording("povray", "povray_still.txt", expected)
    assert "\r" in recorded("povray_still.txt")


def test_povray_animation_progress_restarts_each_frame_from_real_recorded_output() -> None:
    text = recorded("povray_animation.txt")
    frames = text.split("==== [Rendering...] ====")[1:]
    assert len(frames) == 3
    for frame in frames:
        # Each frame climbs from under 1% to 100% in steps of 1024 of 307200 pixels. With two
        # render threads POV-Ray sometimes reports a block late, so the latest percent can
        # step back a little (a real recording: 61440 then 52224 pixels).
        seen = _per_char("povray", frame)
        assert seen[0] < 1.0 and seen[-1] == 100.0 and len(seen) > 250
        assert all(round(value * 307200 / 100) % 1024 == 0 for value in seen)
    check_recording("povray", "povray_animation.txt", _per_char("povray", text))


def test_blender_progress_from_real_recorded_output() -> None:
    check_recording("blender", "blender_frame.txt", [0.0, 100 / 4096, 100 * 2049 / 4096, 100.0])


def test_blender_range_progress_from_real_recorded_output() -> None:
    check_recording("blender", "blender_range.txt", [0.0, 6.25, 100.0] * 3)


# --- recorded from public sources (commercial renderers: no real render here) ---------------


def test_vray_progress_from_recorded_output() -> None:
    expected = [0.0, 4.17, 12.5, 25.0, 33.33, 41.67, 58.33, 66.67, 75.0, 87.5, 95.83, 100.0]
    check_recording("vray", "vray.txt", expected)


def test_redshift_progress_from_recorded_output() -> None:
    check_recording("redshift", "redshift.txt", [100.0 * block / 60 for block in range(1, 61)])


def test_arnold_progress_from_recorded_output() -> None:
    check_recording("arnold", "arnold_kick.txt", [float(pct) for pct in range(0, 101, 5)])


def test_prman_progress_from_recorded_output() -> None:
    expected = [0, 2, 5, 9, 14, 20, 27, 35, 44, 52, 61, 70, 78, 85, 91, 96, 99, 100]
    check_recording("prman", "prman.txt", [float(pct) for pct in expected])


def test_husk_progress_from_recorded_output() -> None:
    expected = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 33, 40, 50, 60, 67, 75, 80, 90, 95, 99, 100]
    check_recording("husk", "husk.txt", [float(pct) for pct in expected])


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("renderer", "name", "first_error"),
    [
        ("povray", "povray_parse_error.txt",
         "File '/tmp/rec/broken.pov' line 2: Parse Error: No matching } in 'sphere', camera found instead"),
        ("povray", "povray_missing_output_folder.txt", "Render failed"),
        ("blender", "blender_no_denoiser.txt", "Error: Build without OpenImageDenoiser"),
        (
            "blender",
            "blender_cannot_save.txt",
            "Error: Render error (Invalid argument) cannot save: '/proc/nonexistent/dir/x.0001.png'",
        ),
        ("vray", "vray_license_error.txt", "[2024/Mar/05|10:02:12] error: Could not obtain a license (error 13)"),
        ("redshift", "redshift_license_error.txt", "License error: (RLM) All licenses in use (-22)"),
        (
            "arnold",
            "arnold_kick_error.txt",
            "00:00:02   288MB ERROR   |  [texturesys] /materials/arnold_utility/image1: "
            "ImageInput::create() called with no filename",
        ),
        ("husk", "husk_license_error.txt", "No licenses could be found to run this application."),
        (
            "prman",
            "prman_error.txt",
            'R50004 {SEVERE} Cannot open display driver "openexr" for /mnt/renders/out/shot.0001.exr',
        ),
    ],
)
def test_error_patterns_catch_recorded_failures(renderer: str, name: str, first_error: str) -> None:
    text = recorded(name)
    for seed in SEEDS:
        _, _, parser = feed_in_chunks(renderer, text, seed)
        assert parser.error == first_error


# --- line splitting ------------------------------------------------------------------------


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    parser = ProgressParser(PROFILES["povray"])
    assert parser.feed("Rendered 1 of 4 pixels\r") == ["Rendered 1 of 4 pixels"]
    assert parser.percent == 25.0  # a "\r" line counts at once, not one chunk later
    assert parser.feed("\nnext\r\nRendered 2 of 4") == ["next"]
    assert parser.percent == 25.0
    assert parser.flush() == ["Rendered 2 of 4"]
    assert parser.flush() == []


def test_bare_carriage_returns_and_blank_lines() -> None:
    parser = ProgressParser(PROFILES["povray"])
    assert parser.feed("a\r\rb\n\nc") == ["a", "", "b", ""]
    assert parser.feed("") == []
    assert parser.flush() == ["c"]


def test_colour_codes_are_removed_before_matching() -> None:
    parser = ProgressParser(PROFILES["vray"])
    assert parser.feed("\x1b[1;32mRendering image...:\x1b[0m 42.50% [ 0h 0m 1.0s]\n") == [
        "Rendering image...: 42.50% [ 0h 0m 1.0s]"
    ]
    assert parser.percent == 42.5


def test_percent_is_clamped_and_empty_totals_are_ignored() -> None:
    husk = ProgressParser(PROFILES["husk"])
    husk.feed("ALF_PROGRESS 140%\n")  # husk's tiled renders can count past 100
    assert husk.percent == 100.0
    redshift = ProgressParser(PROFILES["redshift"])
    redshift.feed("    Block 0/0 (0,0) rendered by GPU 0 in 1ms\n")
    assert redshift.percent is None


def test_first_error_is_kept() -> None:
    parser = ProgressParser(PROFILES["povray"])
    assert parser.percent is None and parser.error is None
    parser.feed("Parse Error: first\nFatal error in parser: second\n")
    assert parser.error == "Parse Error: first"


def test_a_line_without_end_does_not_grow_without_bound() -> None:
    parser = ProgressParser(PROFILES["povray"])
    lines = parser.feed("x" * (MAX_LINE * 2 + 10))
    assert lines == ["x" * MAX_LINE, "x" * MAX_LINE]
    assert parser.flush() == ["x" * 10]


# --- real POV-Ray renders ------------------------------------------------------------------

@pytest.fixture
def povray_tool() -> str:
    """POV-Ray's path: skipped without it on a developer machine, a failure in CI."""
    return require_tool("povray")


needs_povray = pytest.mark.usefixtures("povray_tool")


def _render(argv: list[str], parser: ProgressParser, cwd: Path) -> int:
    """Run a real render, feeding its output to ``parser`` as the pipe delivers it."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
    assert process.stdout is not None
    with process:
        while chunk := os.read(process.stdout.fileno(), 4096):
            parser.feed(chunk.decode("utf-8", errors="replace"))
        parser.flush()
        return process.wait(timeout=120)


@pytest.mark.povray
@needs_povray
def test_real_povray_render_reports_progress_and_writes_default_output(tmp_path: Path) -> None:
    scene = tmp_path / "my scene; rm -rf ~" / "still.pov"
    scene.parent.mkdir()
    scene.write_text(SCENE, encoding="utf-8")
    profile = PROFILES["povray"]
    argv = profile.command(executable=shutil.which("povray") or "povray", scene=str(scene), output=None, threads=2)
    parser = ProgressParser(profile)
    assert _render(argv, parser, cwd=tmp_path) in profile.ok_exit_codes
    assert parser.error is None
    assert parser.percent == 100.0
    assert (scene.parent / "still.png").is_file()  # no output path: <scene stem>.png next to the scene


@pytest.mark.povray
@needs_povray
def test_real_povray_animation_range_names_frames_by_number(tmp_path: Path) -> None:
    scene = tmp_path / "anim.pov"
    scene.write_text(SCENE.replace("<0, 1, 0>", "<clock * 0.1, 1, 0>"), encoding="utf-8")
    (tmp_path / "out").mkdir()
    profile = PROFILES["povray"]
    argv = profile.command(executable="povray", scene=str(scene), output=str(tmp_path / "out" / "anim.png"),
                           threads=2, start=8, end=9)
    parser = ProgressParser(profile)
    assert _render(argv, parser, cwd=tmp_path) == 0
    assert parser.error is None and parser.percent == 100.0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["anim0008.png", "anim0009.png"]


MAKE_BLEND = """\
import bpy, sys
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 8
scene.cycles.use_denoising = False  # Debian's Blender is built without OpenImageDenoise
scene.render.resolution_x, scene.render.resolution_y = 32, 24
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""


def test_real_blender_range_render_reports_progress_and_frame_files(tmp_path: Path) -> None:
    require_tool("blender")
    blend = tmp_path / "my shot; v2" / "scene.blend"
    blend.parent.mkdir()
    (tmp_path / "make.py").write_text(MAKE_BLEND, encoding="utf-8")
    subprocess.run(["blender", "-b", "--factory-startup", "--python", str(tmp_path / "make.py"), "--", str(blend)],
                   check=True, capture_output=True, timeout=300)
    profile = PROFILES["blender"]
    out = tmp_path / "out"
    argv = profile.command(
        executable="blender", scene=str(blend), output=str(out / "scene_"), threads=2, start=1, end=2
    )
    parser = ProgressParser(profile)
    assert _render(argv, parser, cwd=tmp_path) == 0
    assert parser.error is None and parser.percent == 100.0
    assert sorted(path.name for path in out.iterdir()) == ["scene_0001.png", "scene_0002.png"]

    missing = profile.command(executable="blender", scene=str(tmp_path / "gone.blend"), output=None, threads=1, frame=1)
    parser = ProgressParser(profile)
    assert _render(missing, parser, cwd=tmp_path) != 0
    assert parser.error is not None and parser.error.startswith("Error: Cannot read file")


@pytest.mark.povray
@needs_povray
def test_real_povray_parse_error_is_caught(tmp_path: Path) -> None:
    scene = tmp_path / "broken.pov"
    scene.write_text("sphere { <0,0,0>, 1 pigment { rgb 1 }\ncamera { bogus }\n", encoding="utf-8")
    profile = PROFILES["povray"]
    argv = profile.command(executable="povray", scene=str(scene), output=str(tmp_path / "b.png"), threads=1)
    parser = ProgressParser(profile)
    assert _render(argv, parser, cwd=tmp_path) not in profile.ok_exit_codes
    assert parser.error is not None and "Parse Error" in parser.error


def test_the_more_telling_error_wins_whichever_stream_arrives_first() -> None:
    # POV-Ray prints its parse error and "Fatal error in parser" on two streams: their order
    # through the pipes varies, the reason given to the student must not.
    for lines in (["Fatal error in parser: Cannot parse input.", "Parse Error: No matching } in 'sphere'"],
                  ["Parse Error: No matching } in 'sphere'", "Fatal error in parser: Cannot parse input."]):
        parser = ProgressParser(PROFILES["povray"])
        parser.feed("".join(f"{line}\n" for line in lines))
        assert parser.error == "Parse Error: No matching } in 'sphere'", lines


@pytest.mark.parametrize("cut", range(60, 81))
def test_a_parse_error_cut_by_povrays_80_column_wrap_is_still_the_reason(cut: int) -> None:
    # The scene path's length decides where POV-Ray's wrap falls, "Parse Error" included.
    path = "/tmp/pytest-of-root/pytest-352/popen-gw1/test_povray_parse_error_explai0/shot020/frames/" + "x" * cut
    text = f"File '{path}.pov' line 3: Parse Error: No matching }} in 'sphere', camera found instead"
    wrapped = [text[i:i + 80] for i in range(0, len(text), 80)]
    parser = ProgressParser(PROFILES["povray"])
    parser.feed("".join(f"{line}\n" for line in [*wrapped, "Fatal error in parser: Cannot parse input."]))
    assert parser.error is not None and "Parse Error: No matching } in 'sphere'" in parser.error, wrapped


def test_a_parse_error_povray_wrapped_at_a_space_keeps_its_end() -> None:
    # Recorded: POV-Ray broke this line at 78 characters, before " matching".
    lines = ["mes/shot010.0003.envy~work~0~lab1-01~783~7bf07465.pov' line 3: Parse Error: No",
             " matching } in 'sphere', camera found instead", "Fatal error in parser: Cannot parse input."]
    parser = ProgressParser(PROFILES["povray"])
    parser.feed("".join(f"{line}\n" for line in lines))
    assert parser.error is not None
    assert parser.error.endswith("Parse Error: No matching } in 'sphere', camera found instead")
