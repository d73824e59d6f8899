"""Renderer profiles: YAML validation, argv building, extension matching, executables.

V-Ray, Redshift, Arnold, RenderMan and Houdini are commercial and not installed here:
their command lines are checked as argv lists and by running stand-in executables
that record the argv they receive. None of these tests is an end-to-end render.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from envy.render.profiles import (
    ProfileError,
    RendererProfile,
    builtin_profiles,
    current_os,
    load_profiles,
    parse_profile,
    profile_for_file,
)

BUILTINS = builtin_profiles()
# One argv item each, verbatim, wherever they are substituted.
HOSTILE_SCENE = "/mnt/my renders/it's \"q\"; rm -rf / #$(x).SCENE"
HOSTILE_OUTPUT = "/mnt/out dir/a b; rm -rf ~.####.exr"
# POV-Ray takes paths inside its own double quotes (+I"..."), so a '"' cannot be passed to it.
POVRAY_SCENE = HOSTILE_SCENE.replace('"', "")
MINE = {"vray", "redshift", "arnold", "prman", "husk", "blender", "povray"}


def hostile_scene(name: str) -> str:
    return POVRAY_SCENE if name == "povray" else HOSTILE_SCENE


def test_builtin_profiles_include_the_seven_renderers() -> None:
    assert MINE <= set(BUILTINS)
    for name in MINE:
        profile = BUILTINS[name]
        assert profile.source == f"builtin_profiles/{name}.yaml"
        assert set(profile.executables) == {"windows", "darwin", "linux"}
        assert profile.description


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vray", ["vray", f"-sceneFile={HOSTILE_SCENE}", "-frames=12", "-noFrameNumbers=1", "-display=0",
                  "-progressUseColor=0", f"-imgFile={HOSTILE_OUTPUT}", "-numThreads=8"]),
        ("redshift", ["redshift", HOSTILE_SCENE, "-oip", "/mnt/out dir"]),
        ("arnold", ["arnold", "-i", HOSTILE_SCENE, "-dw", "-dp", "-nstdin", "-v", "2",
                    "-set", "options.abort_on_license_fail", "on", "-o", HOSTILE_OUTPUT, "-t", "8"]),
        ("prman", ["prman", "-progress", "-t:8", HOSTILE_SCENE]),
        ("husk", ["husk", HOSTILE_SCENE, "--renderer", "BRAY_HdKarma", "--frame", "12", "--verbose", "a2",
                  "-o", HOSTILE_OUTPUT, "--make-output-path", "--threads", "8"]),
        ("blender", ["blender", "-b", "-Y", HOSTILE_SCENE, "-o", "/mnt/out dir/a b; rm -rf ~.####", "-F", "PNG",
                     "-x", "1", "-t", "8", "-f", "12"]),
        ("povray", ["povray", f'+I"{POVRAY_SCENE}"', "+W640", "+H480", "+A0.3", "-D", "+V", "+FN",
                    f'+O"{HOSTILE_OUTPUT}"', "+WT8"]),
    ],
)
def test_builtin_argv_keeps_hostile_paths_as_single_items(name: str, expected: list[str]) -> None:
    argv = BUILTINS[name].command(executable=name, scene=hostile_scene(name), output=HOSTILE_OUTPUT, threads=8,
                                  frame=12)
    assert argv == expected


def test_povray_refuses_a_path_with_a_double_quote() -> None:
    with pytest.raises(ProfileError, match="povray.*scene.*'\"'"):
        BUILTINS["povray"].command(executable="povray", scene=HOSTILE_SCENE, output=None, threads=None)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vray", ["vray", "-sceneFile=/s/a.vrscene", "-frames=3-5", "-display=0", "-progressUseColor=0"]),
        ("husk", ["husk", "/s/a.vrscene", "--renderer", "BRAY_HdKarma", "--frame", "3", "--frame-count", "3",
                  "--verbose", "a2"]),
        ("blender", ["blender", "-b", "-Y", "/s/a.vrscene", "-s", "3", "-e", "5", "-a"]),
        ("povray", ["povray", '+I"/s/a.vrscene"', "+W640", "+H480", "+A0.3", "-D", "+V", "+FN",
                    "+KFI0", "+KFF9999", "+KI0", "+KF9999", "+SF3", "+EF5"]),
    ],
)
def test_frame_range_argv_without_output_or_threads(name: str, expected: list[str]) -> None:
    argv = BUILTINS[name].command(executable=name, scene="/s/a.vrscene", output=None, threads=None, start=3, end=5)
    assert argv == expected


def test_blender_output_and_threads_come_before_the_render_action() -> None:
    # Blender runs its arguments in order: "-o" after "-f" would be ignored.
    argv = BUILTINS["blender"].command(executable="blender", scene="/s/a.blend", output="/o/x.####.png",
                                       threads=4, start=1, end=9)
    assert argv.index("-o") < argv.index("-t") < argv.index("-s") < argv.index("-a") == len(argv) - 1


def test_no_output_and_no_threads_leave_the_renderer_defaults() -> None:
    argv = BUILTINS["povray"].command(executable="povray", scene="/s/still.pov", output=None, threads=0)
    assert not [item for item in argv if item.startswith(("+O", "+WT"))]
    argv = BUILTINS["prman"].command(executable="prman", scene="/s/a.rib", output="/o/ignored.exr", threads=None)
    assert argv == ["prman", "-progress", "/s/a.rib"]  # the RIB's Display line names the image


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"frame": None}, ["{frame}", "argv"]),  # vray's argv renders one given frame
        ({"frame": 1, "start": 1, "end": 2}, ["either"]),
        ({"start": 5, "end": 2}, ["5-2"]),
        ({"start": 5}, ["both"]),
    ],
)
def test_impossible_frame_requests_are_one_line_errors(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(ProfileError) as caught:
        BUILTINS["vray"].command(executable="vray", scene="/s/a.vrscene", output=None, threads=None, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and "vray" in message
    for word in words:
        assert word in message


def test_a_one_file_per_frame_renderer_cannot_render_a_range() -> None:
    with pytest.raises(ProfileError, match="cannot render a frame range"):
        BUILTINS["arnold"].command(executable="kick", scene="/s/a.ass", output=None, threads=None, start=1, end=2)


@pytest.mark.parametrize("bad", ["-rf", "--python-expr=evil()", "bad\x00name"])
def test_paths_that_would_read_as_options_are_refused(bad: str) -> None:
    with pytest.raises(ProfileError):
        BUILTINS["blender"].command(executable="blender", scene=bad, output=None, threads=None, frame=1)
    with pytest.raises(ProfileError):
        BUILTINS["arnold"].command(executable="kick", scene="/s/a.ass", output=bad, threads=None)


def _stand_in(folder: Path, name: str) -> Path:
    """An executable that writes the argv it was given to <name>.argv.json."""
    exe = folder / name
    record = folder / f"{name}.argv.json"
    exe.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(record)!r}, 'w', encoding='utf-8').write(json.dumps(sys.argv[1:]))\n",
        encoding="utf-8",
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.mark.skipif(sys.platform.startswith("win"), reason="stand-in uses a #! line")
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_argv_reaches_stand_in_executable_verbatim(tmp_path: Path, name: str) -> None:
    """Stand-in executables, not real renders: the argv list arrives item for item."""
    exe = _stand_in(tmp_path, name)
    scene = hostile_scene(name)
    argv = BUILTINS[name].command(executable=str(exe), scene=scene, output=HOSTILE_OUTPUT, threads=2, frame=7)
    subprocess.run(argv, check=True, timeout=60)
    received = json.loads((tmp_path / f"{name}.argv.json").read_text(encoding="utf-8"))
    assert received == argv[1:]
    assert any(scene in item for item in received)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("shot.ass", "arnold"),
        ("shot.0001.ass.gz", "arnold"),
        ("SHOT.0001.ASS.GZ", "arnold"),
        (r"C:\Shots\Kitchen.VRSCENE", "vray"),
        ("/mnt/renders/shot.0001.rs", "redshift"),
        ("frame.0001.rib", "prman"),
        ("stage.usd", "husk"),
        ("stage.USDZ", "husk"),
        ("stage.usdc", "husk"),
        ("turntable.blend", "blender"),
        ("still.pov", "povray"),
        ("archive.gz", None),
        ("notes.txt", None),
        ("folder.blend/readme.txt", None),
        (".blend", None),
    ],
)
def test_extension_matching(filename: str, expected: str | None) -> None:
    found = profile_for_file(filename, BUILTINS)
    assert (found.name if found else None) == expected


def test_longest_extension_wins_over_a_user_profile_for_gz(tmp_path: Path) -> None:
    user = tmp_path / "gz.yaml"
    user.write_text("name: unzip-render\nextensions: [.gz]\nargv: ['{scene}']\n", encoding="utf-8")
    profiles = load_profiles([user])
    assert profile_for_file("shot.ass.gz", profiles).name == "arnold"
    assert profile_for_file("shot.gz", profiles).name == "unzip-render"
    assert BUILTINS["arnold"].matches("A.Ass.Gz") and not BUILTINS["arnold"].matches("a.gz")


def test_user_yaml_overrides_a_builtin_by_name(tmp_path: Path) -> None:
    user = tmp_path / "studio.yaml"
    user.write_text(
        textwrap.dedent(
            """\
            - name: husk
              description: husk with Karma XPU
              extensions: [.usd, .usda, .usdc, .usdz]
              executables: {linux: /opt/hfs20.5/bin/husk}
              argv: ['{scene}', --renderer, BRAY_HdKarmaXPU, --frame, '{frame:04d}', --verbose, a2]
              output_arg: [-o, '{output}']
              threads_arg: [--threads, '{threads}']
              progress: ['ALF_PROGRESS\\s+(?P<pct>\\d+)%']
              errors: ['Error:']
              ok_exit_codes: [0, 3]
            - name: my-cycles
              extensions: [.blend]
              argv: [-b, '{scene}', -f, '{frame}']
            """
        ),
        encoding="utf-8",
    )
    profiles = load_profiles([user])
    husk = profiles["husk"]
    assert husk.source == f"{user}[0]"
    assert husk.executables == {"linux": ("/opt/hfs20.5/bin/husk",)}
    assert husk.ok_exit_codes == (0, 3)
    assert husk.command(executable="husk", scene="/s/a.usd", output=None, threads=None, frame=7) == [
        "husk", "/s/a.usd", "--renderer", "BRAY_HdKarmaXPU", "--frame", "0007", "--verbose", "a2"]
    assert profiles["vray"] == BUILTINS["vray"]  # the others are untouched
    assert profile_for_file("a.blend", profiles).name == "my-cycles"  # a user profile wins a tie


def test_the_example_in_docs_loads(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "renderers.md").read_text(encoding="utf-8")
    example = docs.split("```yaml\n- name: husk", 1)[1].split("```", 1)[0]
    path = tmp_path / "studio.yaml"
    path.write_text("- name: husk" + example, encoding="utf-8")
    profiles = load_profiles([path])
    assert "BRAY_HdKarmaXPU" in profiles["husk"].argv
    argv = profiles["myrender"].command(executable="myrender", scene="/s/a.myscene", output="/o/a.exr", threads=2)
    assert argv == ["myrender", "--threads", "2", "--out", "/o/a.exr", "/s/a.myscene"]


GOOD = "name: mine\nextensions: [.abc]\nargv: ['{scene}']\n"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (GOOD + "colour: red\n", "colour"),
        (GOOD + "output_ext: exr\n", "output_ext"),
        (GOOD.replace("argv: ['{scene}']", "argv: '{scene}'"), "argv"),
        (GOOD.replace("argv: ['{scene}']", "argv: ['{sceen}']"), "argv[0]"),
        (GOOD.replace("argv: ['{scene}']", "argv: ['{scene.name}']"), "argv[0]"),
        (GOOD.replace("argv: ['{scene}']", "argv: ['{scene}', '{frame:q}']"), "argv[1]"),
        (GOOD.replace("argv: ['{scene}']", "argv: [-x]"), "argv"),
        (GOOD + "progress: ['(?P<pct>\\d+']\n", "progress[0]"),
        (GOOD + "progress: ['(\\d+)%']\n", "progress[0]"),
        (GOOD + "executables: {beos: [x]}\n", "executables.beos"),
        (GOOD + "executables: {linux: [1]}\n", "executables.linux"),
        (GOOD + "ok_exit_codes: [true]\n", "ok_exit_codes"),
        (GOOD + "frame_range: 'yes'\n", "frame_range"),
        (GOOD + "frame_range: true\n", "range_argv"),
        (GOOD + "range_argv: ['{scene}', '{start}']\n", "range_argv"),
        (GOOD + "threads_arg: [-t]\n", "threads_arg"),
        (GOOD + "output_arg: [-o]\n", "output_arg"),
        (GOOD.replace("[.abc]", "[abc]"), "extensions"),
        (GOOD.replace("name: mine", "name: My Renderer"), "name"),
        ("extensions: [.abc]\nargv: ['{scene}']\n", "name"),
    ],
)
def test_bad_yaml_is_one_line_error_naming_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profiles([path])
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"'{key}'" in message


def test_broken_yaml_syntax_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: mine\nextensions: ['.abc'\nargv: x\n", encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profiles([path])
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "line 3" in message


def test_unquoted_placeholder_gets_a_hint(tmp_path: Path) -> None:
    # YAML reads [-o, {output}] as a list holding a mapping: say what to do about it.
    path = tmp_path / "unquoted.yaml"
    path.write_text(GOOD + "output_arg: [-o, {output}]\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="'output_arg'.*quote"):
        load_profiles([path])


def test_unreadable_user_file_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profiles([tmp_path / "missing.yaml"])


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def _profile(candidates: dict[str, list[str]]) -> RendererProfile:
    return parse_profile(
        {"name": "vray", "extensions": [".vrscene"], "argv": ["{scene}"], "executables": candidates}, "test.yaml"
    )


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX executable bits")
def test_find_executable_prefers_the_newest_install_from_a_glob(tmp_path: Path) -> None:
    for version in ("maya2023", "maya2025", "maya2024"):
        _executable(tmp_path / version / "vray" / "bin" / "vray")
    profile = _profile({"linux": [str(tmp_path / "maya*/vray/bin/vray")], "windows": ["C:/nowhere/vray.exe"]})
    assert profile.find_executable(os_name="linux") == str(tmp_path / "maya2025/vray/bin/vray")
    assert profile.find_executable(os_name="windows") is None
    assert profile.find_executable(os_name="darwin") is None


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX executable bits")
def test_find_executable_sorts_versions_as_numbers(tmp_path: Path) -> None:
    _executable(tmp_path / "Houdini 9.5" / "bin" / "husk")
    _executable(tmp_path / "Houdini 20.5.370" / "bin" / "husk")
    _executable(tmp_path / "Houdini 20.0.625" / "bin" / "husk")
    profile = _profile({current_os(): [str(tmp_path / "Houdini */bin/husk")]})
    assert profile.find_executable() == str(tmp_path / "Houdini 20.5.370" / "bin" / "husk")


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX executable bits")
def test_find_executable_skips_files_that_cannot_run_and_falls_back_to_path(tmp_path: Path, monkeypatch) -> None:
    not_runnable = tmp_path / "opt" / "vray"
    not_runnable.parent.mkdir()
    not_runnable.write_text("", encoding="utf-8")
    on_path = _executable(tmp_path / "bin" / "vray")
    monkeypatch.setenv("PATH", str(on_path.parent))
    profile = _profile({current_os(): [str(not_runnable), "vray"]})
    assert profile.find_executable() == str(on_path)


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX executable bits")
def test_find_executable_override_wins_and_a_missing_override_means_missing(tmp_path: Path, monkeypatch) -> None:
    default = _executable(tmp_path / "default" / "vray")
    custom = _executable(tmp_path / "custom dir" / "vray-6.2")
    profile = _profile({current_os(): [str(default)]})
    assert profile.find_executable() == str(default)
    assert profile.find_executable({"vray": str(custom)}) == str(custom)
    assert profile.find_executable({"vray": {"executable": str(custom)}}) == str(custom)  # config shape
    assert profile.find_executable({"arnold": str(custom)}) == str(default)  # another renderer's override
    assert profile.find_executable({"vray": str(tmp_path / "gone" / "vray")}) is None
    monkeypatch.setenv("PATH", str(custom.parent))
    assert profile.find_executable({"vray": "vray-6.2"}) == str(custom)  # a command name is looked up on PATH


def test_profiles_are_frozen() -> None:
    with pytest.raises(AttributeError):
        BUILTINS["vray"].argv = ()  # type: ignore[misc]


def test_each_builtin_profile_file_is_named_after_its_renderer() -> None:
    folder = Path(__file__).resolve().parents[1] / "envy" / "render" / "builtin_profiles"
    assert sorted(path.stem for path in folder.glob("*.yaml")) == sorted(BUILTINS)
