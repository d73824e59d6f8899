"""What a ``.blend`` says about itself: its frame range and where Blender writes its frames.

At submit, Envy asks Blender in the background (``blender -b file --python-expr``)
for the scene's frame range and step and its output path and image format, so
a job keeps the artist's own settings (issue 11 Must-hold 4). The file's path
travels in argv, never inside the Python text (ENGINEERING §2); ``-Y`` keeps
scripts stored in the file from running.

The agent then needs to know which files Blender wrote for each frame (the
completion check, the thumbnail). :func:`frame_file` applies Blender's own
naming rules to the recorded output path; the submit side checks them against
Blender's answer for the first frame, so a job is refused rather than left
waiting for files under names Blender does not use.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath

# Blender starts in a few seconds; a busy lab machine or a big file on the network takes longer.
QUERY_TIMEOUT_S = 90.0
_MARK = "ENVY_BLEND_SCENE "
# Printed by Blender itself, the file's path is argv; the text below never contains user input.
_QUERY = (
    "import bpy, json\n"
    "s = bpy.context.scene\n"
    "r = s.render\n"
    "print(" + repr(_MARK) + " + json.dumps({'frame_start': s.frame_start, 'frame_end': s.frame_end,"
    " 'frame_step': s.frame_step, 'filepath': r.filepath, 'file_format': r.image_settings.file_format,"
    " 'file_extension': r.file_extension if r.use_file_extension else '', 'is_movie': r.is_movie_format,"
    " 'first_frame_path': r.frame_path(frame=s.frame_start)}), flush=True)\n"
)
# Blender replaces these extensions with the format's own; others stay and get the format's appended.
_IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".tga", ".bmp", ".exr", ".tif", ".tiff", ".hdr", ".dpx",
                         ".cin", ".rgb", ".sgi", ".jp2", ".j2c", ".webp", ".psd"})
_SAME_FORMAT = {".jpg": {".jpeg"}, ".tif": {".tiff"}, ".rgb": {".sgi"}, ".jp2": {".j2c"}}


class BlendSceneError(ValueError):
    """Blender could not tell (missing, timed out, broken file): one line saying what and what to do."""


@dataclass(frozen=True)
class BlendScene:
    frame_start: int
    frame_end: int
    frame_step: int
    filepath: str  # the output path as the .blend holds it: '//renders/shot_####', '/tmp/'
    file_format: str  # 'PNG', 'OPEN_EXR', 'FFMPEG'...
    file_extension: str  # '.png'; '' when the .blend turns file extensions off
    is_movie: bool
    first_frame_path: str  # where Blender itself says the first frame goes (on this machine)


def ask_blender(blender: str, blend: Path, timeout: float = QUERY_TIMEOUT_S) -> BlendScene:
    """Blender's answer about ``blend``'s active scene; BlendSceneError when it cannot give one."""
    argv = [blender, "-b", "-Y", "--factory-startup", str(blend), "--python-expr", _QUERY]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise BlendSceneError(f"Blender did not read {blend.name} within {timeout:.0f} s") from None
    except OSError as exc:
        raise BlendSceneError(f"cannot start Blender ({blender}): {exc.strerror or exc}") from None
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return _parse(line[len(_MARK):], blend)
    raise BlendSceneError(f"Blender could not read {blend.name}: {_blender_error(proc)}")


def _blender_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error") or "Traceback" in ln]
    if errors:
        return errors[0][:300]
    return f"it exited with code {proc.returncode} without an answer"


def _parse(text: str, blend: Path) -> BlendScene:
    try:
        data = json.loads(text)
        scene = BlendScene(**data)
    except (ValueError, TypeError) as exc:
        raise BlendSceneError(f"Blender's answer about {blend.name} is not understood: {exc}") from None
    ints = (scene.frame_start, scene.frame_end, scene.frame_step)
    texts = (scene.filepath, scene.file_format, scene.file_extension, scene.first_frame_path)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints) or not all(
        isinstance(v, str) for v in texts
    ):
        raise BlendSceneError(f"Blender's answer about {blend.name} has wrong types: {text[:200]}")
    return scene


def frame_file(filepath: str, extension: str, frame: int, scene_dir: Path,
               local: Callable[[str], str] = str) -> Path:
    """The file Blender writes for ``frame`` given the .blend's output path (Blender's own rules).

    ``//`` is the .blend's folder; the last run of ``#`` in the file name is the
    zero-padded frame number, else four digits are appended; the format's
    extension replaces an image extension the name ends with, else it is appended.
    ``local`` turns an absolute folder into this machine's path (the job's remap).
    """
    rel = filepath.startswith("//")
    text = filepath[2:] if rel else filepath
    cut = max(text.rfind("/"), text.rfind("\\")) + 1
    folder, name = text[:cut], text[cut:]
    runs = list(re.finditer(r"#+", name))
    if runs:
        last = runs[-1]
        name = f"{name[:last.start()]}{frame:0{len(last.group())}d}{name[last.end():]}"
    else:
        name = f"{name}{frame:04d}"
    if extension:
        suffix = PurePath(name).suffix.lower()
        if suffix == extension.lower() or suffix in _SAME_FORMAT.get(extension.lower(), ()):
            pass
        elif suffix in _IMAGE_EXTS:
            name = name[: -len(suffix)] + extension
        else:
            name += extension
    if rel:
        where = Path(os.path.normpath(scene_dir / folder.replace("\\", "/")))
    else:
        where = Path(local(folder) if folder else ".")
    return where / name


def check_rules(scene: BlendScene, blend: Path) -> None:
    """Refuse a job whose frames Envy would look for under other names than Blender writes them."""
    ours = frame_file(scene.filepath, scene.file_extension, scene.frame_start, blend.parent)
    if os.path.normcase(os.path.abspath(ours)) != os.path.normcase(os.path.abspath(scene.first_frame_path)):
        raise BlendSceneError(
            f"Envy cannot tell where Blender writes the frames of output path {scene.filepath!r} "
            f"(Blender says {scene.first_frame_path}, Envy expected {ours})"
        )
