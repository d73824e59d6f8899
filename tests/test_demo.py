"""The README's first command: ``envy demo`` makes a local farm and renders a shot with real POV-Ray."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import require_tool
from render_helpers import is_png

REPO = Path(__file__).resolve().parents[1]


def test_the_demo_renders_its_shot_with_three_local_agents(tmp_path: Path) -> None:
    require_tool("povray")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVY_")}
    done = subprocess.run(
        [sys.executable, "-m", "envy", "demo", "--dir", str(tmp_path / "envy-demo"), "--frames", "3",
         "--no-monitor", "--renderer", "povray"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "done: 3 frames in" in done.stdout
    frames = tmp_path / "envy-demo" / "shot010" / "frames"
    images = sorted(frames.glob("shot010.*.png"))
    assert len(images) == 3 and all(is_png(p) for p in images)
