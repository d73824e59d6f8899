"""Husk jobs on real agent subprocesses, against a stand-in husk.

These are contract tests with a stand-in executable, not end-to-end renders:
Houdini is not installed here. tests/stand_ins/husk records its argv, prints
husk's ``ALF_PROGRESS n%`` lines and writes a small file where husk would
write the image (with the tile suffix husk would add).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("pxr", reason="usd-core (the 'test' extra) writes the USD files of these tests")

from envy.render.profiles import builtin_profiles  # noqa: E402
from envy.render.progress import ProgressParser  # noqa: E402
from envy.share.fs import REAL_FS
from envy.usd.submit_usd import submit_usd  # noqa: E402
from farm import Farm, wait_for  # noqa: E402
from test_usd_check import write_shot  # noqa: E402

STAND_IN_HUSK = Path(__file__).parent / "stand_ins" / "husk"


def records(folder: Path, tool: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob(f"{tool}.*.json"))]


def names_in(folder: Path, state: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if f".envy~{state}~" in p.name)


def test_husk_contract_stand_in_progress_lines_parse_with_the_husk_profile(tmp_path: Path) -> None:
    out = tmp_path / "img" / "shot.0001.exr"
    argv = [str(STAND_IN_HUSK), "--renderer", "BRAY_HdKarma", "--frame", "1", "--verbose", "a2",
            "--make-output-path", "--output", str(out), "--tile-count", "2", "2", "--tile-index", "3",
            "--tile-suffix", "_tile%02d", str(tmp_path / "shot.0001.usda")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    parser = ProgressParser(builtin_profiles()["husk"])
    parser.feed(result.stdout)
    parser.flush()
    assert parser.percent == 100.0 and parser.error is None
    assert (tmp_path / "img" / "shot.0001_tile03.exr").stat().st_size > 0


def test_husk_contract_agent_renders_every_frame_and_tile_then_retries_and_fails_a_broken_husk(tmp_path: Path) -> None:
    farm = Farm(tmp_path)
    record = tmp_path / "record"
    record.mkdir()
    farm.env["ENVY_STANDIN_RECORD"] = str(record)
    usd = tmp_path / "usd"
    usd.mkdir()
    for f in (1, 2):
        write_shot(usd / f"shot.{f:04d}.usda", f)
    job = submit_usd(farm.layout, str(usd), "BRAY_HdKarma", tiles=(2, 1), output=str(tmp_path / "images"), fs=REAL_FS)
    tasks = job.tasks_dir(farm.layout)
    try:
        agent = farm.start_agent("lab1-01", renderers={"husk": {"executable": str(STAND_IN_HUSK)}})
        farm.wait_heartbeat(agent)
        farm.send("* render()")
        wait_for(lambda: len(names_in(tasks, "done")) == 4, 30, "the 4 husk tasks to complete")
        images = sorted(p.name for p in (tmp_path / "images").iterdir())
        assert images == [
            "shot.0001_tile00.exr",
            "shot.0001_tile01.exr",
            "shot.0002_tile00.exr",
            "shot.0002_tile01.exr",
        ]
        runs = records(record, "husk")
        assert len(runs) == 4
        for run in runs:
            argv = run["argv"]
            assert argv[argv.index("--renderer") + 1] == "BRAY_HdKarma"
            assert argv[-1].startswith(str(usd)) and ".envy~tmp~" in argv[argv.index("--output") + 1]
        assert sorted(r["argv"][r["argv"].index("--tile-index") + 1] for r in runs) == ["0", "0", "1", "1"]
        logs = list((farm.layout.jobs_dir / job.id / "logs").glob("shot.0001.tile00.lab1-01.1.log"))
        assert logs and "ALF_PROGRESS 100%" in logs[0].read_text()

        # Now a husk that exits non-zero: retried (max_retries=1), then failed; the task file stays.
        farm.stop_all()
        farm.env["ENVY_STANDIN_HUSK_EXIT"] = "3"
        broken = submit_usd(farm.layout, str(usd), pattern="shot.0001.*", max_retries=1, name="broken",
                            output=str(tmp_path / "broken"), priority=90, fs=REAL_FS)
        agent = farm.start_agent("lab1-02", renderers={"husk": {"executable": str(STAND_IN_HUSK)}})
        farm.wait_heartbeat(agent)
        farm.send("* render()")
        broken_tasks = broken.tasks_dir(farm.layout)
        wait_for(lambda: names_in(broken_tasks, "failed"), 30, "the broken husk task to fail")
        assert names_in(broken_tasks, "failed")[0].startswith("shot.0001.envy~failed~2~lab1-02~")
        attempts = sorted((farm.layout.jobs_dir / broken.id / "logs").glob("shot.0001.lab1-02.*.log"))
        assert len(attempts) == 2
        assert all("renderer exited with code 3" in a.read_text() for a in attempts)
        assert not (tmp_path / "broken").exists() or not any((tmp_path / "broken").iterdir())
    finally:
        farm.stop_all()
