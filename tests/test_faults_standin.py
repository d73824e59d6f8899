"""A stand-in renderer for the fault tests and the soak benchmark -- NOT an end-to-end render.

The fault tests need many cheap frames whose every completed render is
counted, so they use a user renderer profile (docs/renderers.md) whose
"renderer" is a few lines of Python: it reads the seconds to spend from the
claimed scene file, prints POV-Ray-style progress, writes the output image
file it was given, and then leaves a marker ``<frame base>~<pid>`` in a
local folder outside the share. A marker therefore means "this frame was
rendered to the end once"; a render killed or failed half-way leaves none.

Real renders (POV-Ray) are covered by the render tests; this module also
holds one test proving the stand-in profile itself works through Envy's
profile loader and plan builder.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from envy.render.profiles import load_profiles

EXTENSION = ".frame"
PROFILE_NAME = "standin"

STANDIN_SCRIPT = r'''"""Envy test stand-in renderer: sleeps, writes the output file, leaves a marker."""
import os
import sys
import time


def say(text, end="\n"):
    # Like a renderer that logs to its own file, keep rendering when the agent
    # reading our output is gone (kill -9): only the agent's next start kills us.
    try:
        print(text, end=end, flush=True)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")


markers, scene, output = sys.argv[1], sys.argv[2], sys.argv[3]
with open(scene, encoding="utf-8") as f:
    words = f.read().split()
seconds = float(words[0])
steps = 4
for i in range(steps):
    say(f"Rendered {i * 25} of 100 pixels", end="\r")
    time.sleep(seconds / steps)
if "fail" in words[1:]:
    say("standin: error: this frame is made to fail")
    sys.exit(4)
try:
    with open(output, "wb") as f:
        f.write(b"standin render of " + os.path.basename(scene).encode())
except OSError as exc:
    say(f"standin: error writing {output}: {exc}")
    sys.exit(3)
base = os.path.basename(scene).split(".envy~")[0]
with open(os.path.join(markers, f"{base}~{os.getpid()}"), "w"):
    pass
say("Rendered 100 of 100 pixels")
'''


@dataclass
class StandIn:
    """The stand-in renderer's files: its script, its user profile YAML and its marker folder."""

    root: Path

    @property
    def script(self) -> Path:
        return self.root / "standin_render.py"

    @property
    def profile(self) -> Path:
        return self.root / "standin.yaml"

    @property
    def markers(self) -> Path:
        return self.root / "markers"

    def install(self) -> StandIn:
        self.root.mkdir(parents=True, exist_ok=True)
        self.markers.mkdir(exist_ok=True)
        self.script.write_text(STANDIN_SCRIPT, encoding="utf-8")
        # JSON is YAML: no quoting surprises with the paths.
        profile = {
            "name": PROFILE_NAME,
            "description": "test stand-in (python writes a file); not a real renderer",
            "extensions": [EXTENSION],
            "executables": {"linux": [sys.executable], "darwin": [sys.executable], "windows": [sys.executable]},
            "argv": [str(self.script), str(self.markers), "{scene}"],
            "output_arg": ["{output}"],
            "output_ext": ".png",
            "progress": [r"Rendered (?P<done>\d+) of (?P<total>\d+) pixels"],
            "errors": ["^standin: error"],
            "ok_exit_codes": [0],
        }
        self.profile.write_text(json.dumps(profile, indent=1), encoding="utf-8")
        return self

    def make_frames(
        self, folder: Path, count: int, seconds: float, stem: str = "shot", fail: bool = False
    ) -> list[str]:
        """``count`` frame files ``shot.0001.frame``... each costing ``seconds`` (and failing, with
        ``fail``: exit code 4 after that time); returns the bases."""
        folder.mkdir(parents=True, exist_ok=True)
        bases = [f"{stem}.{n:04d}" for n in range(1, count + 1)]
        for base in bases:
            (folder / f"{base}{EXTENSION}").write_text(f"{seconds}{' fail' if fail else ''}\n", encoding="utf-8")
        return bases

    def renders(self) -> collections.Counter[str]:
        """Completed renders per frame base, from the markers."""
        return collections.Counter(name.rsplit("~", 1)[0] for name in _names(self.markers))

    def settings(self) -> dict[str, object]:
        """Agent settings that make the stand-in known (``--set profiles=[...]``)."""
        return {"profiles": [str(self.profile)]}


def _names(folder: Path) -> list[str]:
    try:
        return [p.name for p in folder.iterdir()]
    except FileNotFoundError:
        return []


def test_standin_profile_loads_and_renders_one_frame(tmp_path: Path) -> None:
    standin = StandIn(tmp_path / "standin").install()
    profile = load_profiles([standin.profile])[PROFILE_NAME]
    standin.make_frames(tmp_path / "shot", 1, 0.01)
    scene = tmp_path / "shot" / "shot.0001.envy~work~0~lab1-01~1~abcd1234.frame"
    (tmp_path / "shot" / "shot.0001.frame").rename(scene)
    exe = profile.find_executable()
    assert exe is not None
    argv = profile.command(executable=exe, scene=str(scene), output=str(tmp_path / "out.png"), threads=None)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out.png").read_bytes().startswith(b"standin render of")
    assert standin.renders() == {"shot.0001": 1}
