"""``envy-io delete JOB --with-outputs``: a job's images go only after a yes, and only those Envy wrote (issue 11 §1).

A real agent renders real POV-Ray frames into an output folder; the agent
records each frame's files, and deleting with outputs removes exactly those:
never the scenes, a file of the student's own in the same folder, or a file a
planted record points at outside the share. On a terminal the CLI asks (a real
PTY); from a script it refuses without ``--yes`` and deletes nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest

from conftest import require_tool
from envy.render.claims import ItemPattern, sort_listing
from envy.render.output_record import outputs_dir
from envy_io.cli import main
from farm import Farm, wait_for
from render_helpers import pov_frames, small_povray_profile, submit_folder

pexpect = pytest.importorskip("pexpect")


def cli(farm: Farm, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--share", str(farm.share), *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def rendered(farm: Farm, tmp_path: Path) -> dict:
    require_tool("povray")
    # The farm's project root, in the share's config where agents and envy-io both read it.
    (farm.share / "config.yaml").write_text(f"project_roots: [{json.dumps(str(farm.root))}]\n")
    frames = pov_frames(tmp_path / "shot040" / "frames", 3)
    out = tmp_path / "shot040" / "images"
    profile = small_povray_profile(tmp_path / "povray-small.yaml")
    job = submit_folder(farm.share, frames, renderer="povray-small", profiles=[profile], name="shot040",
                        output=str(out))
    farm.start_agent("lab1-01", profiles=[str(profile)])
    farm.send("lab1 * render()")
    wait_for(lambda: len(sort_listing([p.name for p in frames.iterdir()], ItemPattern([".pov"])).done) == 3, 90,
             "3 frames done")
    wait_for(lambda: len(list(outputs_dir(farm.layout, job.id).glob("*.json"))) == 3, 30, "3 output records")
    return {"job": job, "frames": frames, "out": out}


def _images(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".png")


def test_with_outputs_deletes_only_the_recorded_images_and_refuses_a_planted_record(
        farm: Farm, tmp_path_factory: pytest.TempPathFactory, rendered: dict) -> None:
    job, frames, out = rendered["job"], rendered["frames"], rendered["out"]
    assert _images(out) == [f"shot010.{i:04d}.png" for i in (1, 2, 3)]
    own = out / "reference.png"  # the student's own file beside the renders
    own.write_bytes(b"not Envy's")
    precious = tmp_path_factory.mktemp("elsewhere") / "precious.png"  # outside the share and every project root
    precious.write_bytes(b"keep me")
    (outputs_dir(farm.layout, job.id) / "evil.json").write_text(json.dumps(
        {"item": "evil", "files": [{"path": str(precious)}, {"share": "../precious.png"},
                                   {"share": "ENVY_SHARE.json"}]}))

    # From a script (no terminal) it cannot ask: refused, nothing deleted.
    code, _, err = cli(farm, "delete", "shot040", "--with-outputs")
    assert code == 2 and err.count("\n") == 1 and "--yes" in err, err
    assert _images(out) == ["reference.png", "shot010.0001.png", "shot010.0002.png", "shot010.0003.png"]
    assert (farm.layout.jobs_dir / f"{job.id}.json").exists()

    code, stdout, err = cli(farm, "delete", "shot040", "--with-outputs", "--yes")
    assert code == 0, err
    assert "deleted 3 image file(s)" in stdout, stdout
    assert stdout.count("not deleted:") == 3, stdout
    assert _images(out) == ["reference.png"], "only the files the agent recorded are gone"
    assert precious.read_bytes() == b"keep me" and farm.layout.sentinel.exists()
    assert sorted(p.name for p in frames.iterdir() if p.suffix == ".pov") == [
        f"shot010.{i:04d}.pov" for i in (1, 2, 3)], "the scenes are kept, with their own names back"
    assert (frames / "scene.inc").exists()
    assert not (farm.layout.jobs_dir / f"{job.id}.json").exists()


def test_yes_without_with_outputs_is_a_one_line_error(farm: Farm, rendered: dict) -> None:
    code, _, err = cli(farm, "delete", "shot040", "--yes")
    assert code == 2 and "--yes only goes with --with-outputs" in err and err.count("\n") == 1
    assert (farm.layout.jobs_dir / f"{rendered['job'].id}.json").exists()


def test_on_a_terminal_the_cli_lists_the_images_and_asks_first(farm: Farm, rendered: dict) -> None:
    out = rendered["out"]
    argv = ["-m", "envy_io", "--share", str(farm.share), "delete", "shot040", "--with-outputs"]
    child = pexpect.spawn(sys.executable, argv, env=farm.env, encoding="utf-8", timeout=60, dimensions=(40, 200))
    child.expect(r"Delete shot040 and its 3 image file\(s\) \([\d.]+ KB\) in .*images\? "
                 r"The images cannot be brought back \[y/N\] ")
    child.sendline("n")
    child.expect("nothing deleted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert len(_images(out)) == 3 and (farm.layout.jobs_dir / f"{rendered['job'].id}.json").exists()

    child = pexpect.spawn(sys.executable, argv, env=farm.env, encoding="utf-8", timeout=60, dimensions=(40, 200))
    child.expect(r"\[y/N\] ")
    child.sendline("y")
    child.expect("deleted 3 image file")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and _images(out) == []
