"""The runnable copy on the share: a real PEX built with pex, run with ``python -I`` from the share.

The PEX is built once per session (it takes minutes); the wheels are cached in
ENVY_WHEEL_CACHE (default ~/.cache/envy/test-wheels) across sessions. The
second build, used to watch an agent move to a new version, carries only this
machine's platform to keep the session short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require_tool
from envy.app.build import PLATFORMS, BuildTargets, build_pex, wheels_in
from envy.app.launcher import install_launcher
from envy.app.layout import AppLayout
from envy.app.protocol import write_share_protocol
from envy.app.publish import publish, read_current, rollback
from envy.render.claims import ItemPattern, sort_listing
from envy.render.thumbnails import THUMB_SIZE
from envy.share.fs import ShareFS
from farm import FAST, Farm, wait_for
from render_helpers import pov_frames, submit_folder

REPO = Path(__file__).resolve().parents[1]
HERE = f"{sys.version_info.major}{sys.version_info.minor}"
LINUX_X86_64 = "manylinux_2_28_x86_64"
# Minutes for the first build (`-m "not app"` leaves them out); one worker builds and runs them all.
pytestmark = [pytest.mark.app, pytest.mark.xdist_group("app")]


def _wheel_cache() -> Path:
    return Path(os.environ.get("ENVY_WHEEL_CACHE") or Path.home() / ".cache" / "envy" / "test-wheels")


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    reuse = os.environ.get("ENVY_APP_TEST_BUILDS")  # a developer's folder of b1.pyz and b2.pyz from a past session
    if reuse and (Path(reuse) / "b1.pyz").is_file() and (Path(reuse) / "b2.pyz").is_file():
        yield {"0.1.0.b1": Path(reuse) / "b1.pyz", "0.1.0.b2": Path(reuse) / "b2.pyz"}
        return
    require_tool("pex")
    out = tmp_path_factory.mktemp("builds")
    # Every OS and CPU for this Python (120 MB: numpy and Pillow for five platforms), and the
    # full default (4 Pythons x 5 platforms) is the same code with a longer list
    # (test_the_default_build_targets_every_python_hython_uses). b2 is Linux x86_64 only (32 MB).
    first = build_pex(out / "b1.pyz", "0.1.0.b1", _wheel_cache(), BuildTargets(pythons=(HERE,)))
    second = build_pex(
        out / "b2.pyz", "0.1.0.b2", _wheel_cache(), BuildTargets(pythons=(HERE,), platforms=(LINUX_X86_64,))
    )
    yield {"0.1.0.b1": first, "0.1.0.b2": second}


@pytest.fixture(scope="session")
def pex_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The per-user cache a PEX unpacks its wheels into, kept between runs as on a lab machine.

    The first run of the session starts cold (the import test); the agents after it
    reuse the unpacked wheels instead of spending half a minute each on them."""
    return tmp_path_factory.mktemp("pex-root")


def _isolated_env(farm: Farm, pex_root: Path, check_s: float = 1.0) -> dict[str, str]:
    """No PYTHONPATH and a working folder outside the checkout: only the share copy can be imported."""
    env = {k: v for k, v in farm.env.items() if not k.startswith("PYTHON")}
    env["ENVY_APP_CHECK_S"] = str(check_s)
    env["PEX_ROOT"] = str(pex_root)
    return env


def _start_from_share(farm: Farm, host: str, env: dict[str, str]) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-I",
        str(AppLayout(farm.share).launcher),
        "agent",
        "--share",
        str(farm.share),
        "--host",
        host,
    ]
    for key, value in {**FAST, "project_roots": [str(farm.root)]}.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    out = open(farm.root / f"{host}.out", "ab")
    proc = subprocess.Popen(
        argv, env=env, cwd=farm.root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    out.close()
    return proc


# Which words a wheel's platform tag holds for each target: its OS, and one of the CPUs it runs
# on (universal2 is both Mac CPUs in one wheel).
OS_CPU = {
    "win_amd64": ("win", ("amd64",)),
    "macosx_13_0_x86_64": ("macosx", ("x86_64", "universal2")),
    "macosx_14_0_arm64": ("macosx", ("arm64", "universal2")),
    "manylinux_2_28_x86_64": ("linux", ("x86_64",)),
    "manylinux_2_28_aarch64": ("linux", ("aarch64",)),
}
BINARY = ("psutil", "pyyaml", "watchdog", "pillow", "numpy", "openexr", "google_re2")


def _binary_wheels(wheels: list[str], project: str, python: str, platform: str) -> list[str]:
    """The binary wheels of ``project`` for CPython ``python`` ("cp311": its ABI, abi3, or none) on ``platform``."""
    os_word, cpus = OS_CPU[platform]
    found = []
    for wheel in wheels:
        name, _version, *_build, interpreter, abi, plat = wheel.removesuffix(".whl").split("-")
        if name.lower() != project or plat == "any" or os_word not in plat or not any(c in plat for c in cpus):
            continue
        if abi in (python, "abi3", "none") and (interpreter == python or interpreter.startswith(("py3", "cp3"))):
            found.append(wheel)
    return found


def test_the_copy_holds_binary_wheels_for_windows_macos_and_linux(builds: dict[str, Path]) -> None:
    wheels = wheels_in(builds["0.1.0.b1"])
    py = f"cp{HERE}"
    assert set(OS_CPU) == set(PLATFORMS)
    for plat in PLATFORMS:
        for project in BINARY:
            assert _binary_wheels(wheels, project, py, plat), f"no {project} wheel for {plat} {py} in {wheels}"
    # The thumbnail libraries and RE2 are built for this very Python's ABI on Windows x64 and macOS.
    for project in ("pillow", "numpy", "openexr", "google_re2"):
        for plat in ("win_amd64", "macosx_13_0_x86_64", "macosx_14_0_arm64"):
            assert any(f"-{py}-{py}-" in w for w in _binary_wheels(wheels, project, py, plat)), (project, plat)
    assert any(w.startswith("prompt_toolkit-") for w in wheels)
    assert any(w.startswith("starlette-") for w in wheels) and any(w.startswith("uvicorn-") for w in wheels)
    # The policy's time zone on Windows: zoneinfo's data and the Windows zone-name table.
    assert any(w.startswith("tzdata-") for w in wheels) and any(w.startswith("tzlocal-") for w in wheels)


def test_every_runtime_dependency_imports_from_the_copy_with_python_isolated(
    tmp_path: Path, builds: dict[str, Path], pex_root: Path
) -> None:
    """RE2 for share regexes, the thumbnail libraries, and what `envy-io web` serves with."""
    code = (
        "import PIL.Image, numpy, OpenEXR, re2, starlette, uvicorn, psutil, watchdog, yaml, prompt_toolkit\n"
        "from envy.protocol.safe_regex import compile_safe\n"
        "import envy_io.web.server\n"
        "assert compile_safe('lab[12]-0[1-3]').fullmatch('LAB1-02')\n"
        "print('imports ok', PIL.Image.__name__, re2.__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PEX_ROOT=str(pex_root), PEX_INTERPRETER="1")
    out = subprocess.run(
        [sys.executable, "-I", str(builds["0.1.0.b1"]), "-c", code],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "imports ok" in out.stdout
    assert str(REPO) not in out.stdout + out.stderr


def test_the_default_build_targets_every_python_hython_uses() -> None:
    pairs = BuildTargets().pairs()
    for py in ("310", "311", "312", "313"):  # Houdini 20 is 3.10/3.11, 20.5 and 21 are 3.11
        for plat in ("win_amd64", "macosx_13_0_x86_64", "macosx_14_0_arm64", "manylinux_2_28_x86_64",
                     "manylinux_2_28_aarch64"):
            assert (py, plat) in pairs
    assert len(BuildTargets().complete_platforms()) == len(pairs) == 20


def test_publish_is_atomic_and_rollback_is_one_call(tmp_path: Path, builds: dict[str, Path]) -> None:
    farm = Farm(tmp_path)
    fs = ShareFS()
    app = AppLayout(farm.share)
    publish(farm.share, builds["0.1.0.b1"], "0.1.0.b1", fs)
    publish(farm.share, builds["0.1.0.b2"], "0.1.0.b2", fs)
    assert read_current(app, fs).version == "0.1.0.b2"  # type: ignore[union-attr]
    back = rollback(farm.share, fs)
    assert (back.version, back.previous) == ("0.1.0.b1", "0.1.0.b2")
    with pytest.raises(Exception, match="already on the share with other contents"):
        publish(farm.share, builds["0.1.0.b2"], "0.1.0.b1", fs)
    leftovers = [p.name for p in app.folder.rglob("*") if ".envy-tmp-" in p.name]
    assert leftovers == []


def test_agent_from_the_share_copy_renders_then_moves_to_a_new_version_when_idle(
    tmp_path: Path, builds: dict[str, Path], pex_root: Path
) -> None:
    require_tool("povray")
    farm = Farm(tmp_path)
    fs = ShareFS()
    publish(farm.share, builds["0.1.0.b1"], "0.1.0.b1", fs)
    install_launcher(farm.share, fs)
    env = _isolated_env(farm, pex_root)
    proc = _start_from_share(farm, "lab9-01", env)
    try:
        first = wait_for(lambda: _status(farm, "lab9-01", version="0.1.0.b1", state="idle"), 120, "agent b1 idle")
        frames = pov_frames(tmp_path / "shot" / "frames", 4)
        submit_folder(farm.share, frames)
        farm.send("lab9 * render()")
        pattern = ItemPattern([".pov"])
        wait_for(lambda: len(sort_listing([p.name for p in frames.iterdir()], pattern).done) == 4, 120, "4 frames done")
        wait_for(lambda: _no_frame_in_hand(farm, "lab9-01"), 30, "agent with no frame in hand after the job")
        # The agent made each frame's preview with the copy's Pillow (no placeholder: that needs Pillow too).
        thumbs = wait_for(lambda: _thumbs(farm, 4), 60, "the agent's previews of the 4 frames")
        _assert_preview_of_the_frame(thumbs[0], frames / "shot010.0001.png")
        assert "no preview for" not in farm.log("lab9-01") and "cannot write the preview" not in farm.log("lab9-01")
        publish(farm.share, builds["0.1.0.b2"], "0.1.0.b2", fs)
        second = wait_for(lambda: _status(farm, "lab9-01", version="0.1.0.b2"), 120, "agent moved to b2")
        assert second["pid"] != first["pid"] and proc.poll() is None  # same launcher, new agent process
        more = pov_frames(tmp_path / "shot2" / "frames", 2)
        submit_folder(farm.share, more)
        farm.send("lab9 * render()")
        wait_for(lambda: len(sort_listing([p.name for p in more.iterdir()], pattern).done) == 2, 120, "2 more frames")
        # The frame is marked done before its "completed" line is logged: wait for the lines too.
        log = wait_for(lambda: (t := farm.log("lab9-01")).count(" of shot2 in ") >= 2 and t, 30, "the 2 frames logged")
        for i in range(1, 5):  # every frame of the first job exactly once, across both versions
            assert log.count(f"completed shot010.{i:04d} of shot in ") == 1, i
        for i in range(1, 3):  # and the job after the move, by the new version
            assert log.count(f"completed shot010.{i:04d} of shot2 in ") == 1, i
        done = sorted(p.name for p in frames.iterdir() if p.suffix == ".png")
        assert len(done) == 4
        # The agent moves itself (envy/app/version_watch.py); the launcher's own move of an idle agent
        # is the fallback for older builds, and may win the race when it looks first.
        moved_by_agent = "version 0.1.0.b2 is published on the share: restarting into it" in log
        moved_by_launcher = "moving the idle agent to it" in (farm.root / "lab9-01.out").read_text(errors="replace")
        assert moved_by_agent or moved_by_launcher
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_older_build_on_a_newer_share_refuses_and_says_why(
    tmp_path: Path, builds: dict[str, Path], pex_root: Path
) -> None:
    farm = Farm(tmp_path)
    fs = ShareFS()
    app = AppLayout(farm.share)
    publish(farm.share, builds["0.1.0.b1"], "0.1.0.b1", fs)
    install_launcher(farm.share, fs)
    write_share_protocol(app, 99, fs)
    proc = _start_from_share(farm, "lab9-02", _isolated_env(farm, pex_root))
    try:
        st = wait_for(lambda: _status(farm, "lab9-02", state="too-old"), 120, "a too-old status")
        assert "speaks share protocol 1-1 but the share uses protocol 99" in st["message"]
        assert "too old" in farm.log("lab9-02")
        assert proc.poll() is None  # it waits for a newer version instead of exiting
        assert not (farm.share / "seats").exists()  # and did nothing else
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_launcher_runs_the_current_version_with_python_isolated(
    tmp_path: Path, builds: dict[str, Path], pex_root: Path
) -> None:
    farm = Farm(tmp_path)
    fs = ShareFS()
    publish(farm.share, builds["0.1.0.b1"], "0.1.0.b1", fs)
    written = install_launcher(farm.share, fs)
    assert {p.name for p in written} >= {
        "envy.pyz",
        "start_envy_agent.bat",
        "start_envy_agent.command",
        "start_envy_agent.sh",
    }
    out = subprocess.run(
        [sys.executable, "-I", str(AppLayout(farm.share).launcher), "--version"],
        env=_isolated_env(farm, pex_root),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "envy 0.1.0.b1"
    shell = subprocess.run(  # Envy IO from the same copy: what a student uses on a lab machine
        [sys.executable, "-I", str(AppLayout(farm.share).launcher), "io", "--share", str(farm.share), "status"],
        env=_isolated_env(farm, pex_root), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert shell.returncode == 0, shell.stderr
    assert "no agents have reported yet" in shell.stdout


def _thumbs(farm: Farm, count: int) -> list[Path] | None:
    found = sorted(farm.layout.jobs_dir.glob("*/thumbs/*.jpg"))
    return found if len(found) >= count else None


def _assert_preview_of_the_frame(thumb: Path, frame: Path) -> None:
    """A scaled-down colour picture of ``frame``, not the grey "no preview" tile."""
    from PIL import Image, ImageChops, ImageStat

    with Image.open(thumb) as preview, Image.open(frame) as image:
        assert preview.format == "JPEG" and max(preview.size) == THUMB_SIZE
        assert abs(preview.width / preview.height - image.width / image.height) < 0.02
        rgb = preview.convert("RGB")
        expected = image.convert("RGB").resize(rgb.size)
        saturation = rgb.convert("HSV").getchannel("S").getextrema()[1]
        assert saturation > 40, "the preview is grey: a placeholder, not the frame"
        difference = ImageStat.Stat(ImageChops.difference(rgb, expected)).mean
        assert max(difference) < 12, difference


def _no_frame_in_hand(farm: Farm, host: str) -> bool:
    st = farm.status(host) or {}
    return st.get("done_frames") == 4 and not any(w.get("frame") for w in st.get("workers") or [])


def _status(farm: Farm, host: str, **want: object) -> dict | None:
    st = farm.status(host)
    if not st:
        return None
    return st if all(st.get(k) == v for k, v in want.items()) else None


def test_envy_init_with_app_writes_launcher_scripts_protocol_and_a_version(
    tmp_path: Path, builds: dict[str, Path]
) -> None:
    share = tmp_path / "envy"
    pyz = builds["0.1.0.b1"]
    proc = subprocess.run(
        [sys.executable, "-m", "envy", "init", str(share), "--with-app", "--from", str(pyz)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    app = AppLayout(share)
    assert json.loads(app.protocol.read_text()) == {"protocol": 1}
    assert read_current(app, ShareFS()).version == "0.1.0.b1"  # type: ignore[union-attr]
    assert app.version_pyz("0.1.0.b1").read_bytes() == pyz.read_bytes()
    sh = app.start_script(".sh").read_text()
    assert '"$PY" -I "$HERE/envy.pyz" agent "$@"' in sh and os.access(app.start_script(".sh"), os.X_OK)
    assert "/Applications/Houdini" in app.start_script(".command").read_text()
    bat = app.start_script(".bat").read_bytes()
    assert b"\r\n" in bat and b'py -3 -I "%HERE%envy.pyz" agent %*' in bat
    status = subprocess.run(
        [sys.executable, "-m", "envy", "app", "status", "--share", str(share), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert json.loads(status.stdout)["current"] == "0.1.0.b1"


def test_start_script_runs_the_agent_from_the_share(
    tmp_path: Path, builds: dict[str, Path], pex_root: Path
) -> None:
    farm = Farm(tmp_path)
    fs = ShareFS()
    publish(farm.share, builds["0.1.0.b1"], "0.1.0.b1", fs)
    install_launcher(farm.share, fs)
    script = AppLayout(farm.share).start_script(".sh")
    argv = [
        "sh",
        str(script),
        "--share",
        str(farm.share),
        "--host",
        "lab9-03",
        *[arg for k, v in FAST.items() for arg in ("--set", f"{k}={json.dumps(v)}")],
    ]
    proc = subprocess.Popen(
        argv,
        env=_isolated_env(farm, pex_root),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _status(farm, "lab9-03", version="0.1.0.b1", state="idle"), 120, "agent from the script")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
