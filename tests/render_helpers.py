"""Helpers for render tests: frame folders, renderer profiles for tests, and log checks."""

from __future__ import annotations

import re
import struct
import sys
import zlib
from pathlib import Path

from envy.demo import write_frames
from envy.render.jobs import Job
from envy.render.profiles import load_profiles
from envy.render.submit import SubmitRequest, submit
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout


def pov_frames(folder: Path, count: int) -> Path:
    write_frames(folder, count, "povray")
    return folder


def slow_povray_profile(path: Path, width: int = 640, height: int = 480) -> Path:
    """Real POV-Ray at a size that takes a few seconds, so a test can act mid-frame.

    About 5 s a frame on an idle core here, 10 s at load 2 and several times that beside
    stress-ng: enough to act mid-frame on an idle machine, few enough that a test of three
    frames ends well inside its bounds on a busy one (1600x1200 took 60 s at load 2).
    """
    path.write_text(
        "name: povray-slow\nextensions: [.pov]\n"
        "executables: {linux: [/usr/bin/povray, povray], darwin: [povray], windows: [pvengine64.exe]}\n"
        f"argv: ['+I\"{{scene}}\"', +W{width}, +H{height}, +A0.05, +AM2, +R4, -D, +V, +FN, +WT1]\n"
        "output_arg: ['+O\"{output}\"']\noutput_ext: .png\noutput_next_to_scene: true\n"
        "progress: ['Rendered (?P<done>\\d+) of (?P<total>\\d+) pixels']\n"
        "errors: ['^Parse Error', 'Fatal error']\n"
    )
    return path


def standin_profile(path: Path, name: str, code: str, ext: str = ".frame") -> Path:
    """A stand-in renderer (python -c CODE scene output) for tests about the farm, not the renderer."""
    path.write_text(
        f"name: {name}\nextensions: [{ext}]\n"
        f"executables: {{linux: ['{sys.executable}'], darwin: ['{sys.executable}'], windows: ['{sys.executable}']}}\n"
        f"argv: [-c, {code!r}, '{{scene}}']\noutput_arg: ['{{output}}']\noutput_ext: .png\n"
        "progress: ['(?P<pct>\\d+)%']\nerrors: ['^FATAL']\n"
    )
    return path


def submit_folder(
    share: Path, folder: Path, renderer: str | None = None, profiles: list[Path] | None = None, **kw: object
) -> Job:
    return submit(
        ShareLayout(share),
        SubmitRequest(str(folder), renderer=renderer, **kw),
        load_profiles(profiles or []),
        fs=REAL_FS,
    )  # type: ignore[arg-type]


def is_png(path: Path) -> bool:
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    width, height = struct.unpack(">II", data[16:24])
    return width > 0 and height > 0 and b"IEND" in data[-12:]


def completions(logs: list[str], base: str) -> int:
    return sum(len(re.findall(rf"completed {re.escape(base)} of", log)) for log in logs)


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00"))
        + chunk(b"IEND", b"")
    )



def small_povray_profile(path: Path, width: int = 160, height: int = 120) -> Path:
    """Real POV-Ray at a tile-sized resolution: real frames that render fast on a busy machine."""
    path.write_text(
        "name: povray-small\nextensions: [.pov]\n"
        "executables: {linux: [/usr/bin/povray, povray], darwin: [povray], windows: [pvengine64.exe]}\n"
        f"argv: ['+I\"{{scene}}\"', +W{width}, +H{height}, -A, -D, +V, +FN, +WT1]\n"
        "output_arg: ['+O\"{output}\"']\noutput_ext: .png\noutput_next_to_scene: true\n"
        "progress: ['Rendered (?P<done>\\d+) of (?P<total>\\d+) pixels']\n"
        "errors: ['^Parse Error', 'Fatal error']\n"
    )
    return path
