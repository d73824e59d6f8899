"""Which frames a scene file's job renders, and where its frames go, as the scene itself says.

Renderers' own settings win (issue 11 Must-hold 4):

* a ``.blend`` is asked (envy/render/blend_scene.py): its frame range and step
  unless ``--frames`` gives the range, its output path unless ``--output``
  gives a folder, and its image format (unless it is a movie: then PNG frames
  go to the ``--output`` folder); they are recorded in the job's
  ``settings`` (``scene_output``, ``scene_output_ext``, ``scene_format``,
  ``frame_step``) for the agents;
* a ``.pov`` that does not use ``clock`` (or ``frame_number``) is a still:
  one task, no ``--frames`` needed;
* any other scene that holds every frame needs ``--frames``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envy.render.blend_scene import BlendScene, BlendSceneError, ask_blender, check_rules, frame_file
from envy.render.confine import MAX_TASK_FRAMES
from envy.render.jobs import JobError
from envy.render.profiles import RendererProfile, resolve_executable

# Settings keys a job carries for the agents (docs/share-layout.md).
SCENE_OUTPUT = "scene_output"
SCENE_OUTPUT_EXT = "scene_output_ext"
SCENE_FORMAT = "scene_format"
FRAME_STEP = "frame_step"
MAX_STEP = MAX_TASK_FRAMES
# A still .pov is read to look for the clock; a scene file larger than this is taken as animated data.
MAX_POV_SCAN = 8 * 1024 * 1024
_POV_ANIMATED = re.compile(r"\b(clock|clock_delta|clock_on|frame_number|initial_frame|final_frame)\b")
_POV_NOISE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"', re.DOTALL)


@dataclass(frozen=True)
class SceneFrames:
    """What a file's job renders: frames start..end every ``step``, or one still image."""

    start: int = 1
    end: int = 1
    step: int = 1
    still: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str | None:
        if self.still:
            return None
        return f"{self.start}-{self.end}" + (f" every {self.step}" if self.step != 1 else "")


Asker = Callable[[str, Path], BlendScene]


def scene_frames(local: Path, source: str, profile: RendererProfile, frames: tuple[int, int] | None,
                 output: str | None, renderers: Mapping[str, Any], ask: Asker = ask_blender) -> SceneFrames:
    """The frames and recorded output of the job for scene file ``local``; JobError on bad input."""
    if local.suffix.lower() == ".blend":
        return _blend_frames(local, source, profile, frames, output, renderers, ask)
    if frames is not None:
        return SceneFrames(frames[0], frames[1])
    if local.suffix.lower() == ".pov":
        if _pov_is_animated(local):
            raise JobError(f"{source} is animated (it uses clock or frame_number): give --frames A-B "
                           "(and --chunk N); a still .pov needs no --frames")
        return SceneFrames(still=True)
    raise JobError(f"{source} holds every frame: give --frames A-B (and --chunk N)")


def _blend_frames(local: Path, source: str, profile: RendererProfile, frames: tuple[int, int] | None,
                  output: str | None, renderers: Mapping[str, Any], ask: Asker) -> SceneFrames:
    configured = renderers.get(profile.name)
    configured = configured.get("executable") if isinstance(configured, Mapping) else configured
    # A configured Blender that is not there is "not found", said once here (find_executable would warn too).
    blender = profile.find_executable(renderers) if not configured or resolve_executable(str(configured)) else None
    if blender is None:
        if frames is not None and output:  # nothing left to ask: the job sets range and output
            return SceneFrames(frames[0], frames[1])
        raise JobError(f"{source}: Blender is needed to read the .blend's frame range and output but is not "
                       f"found here (set renderers.{profile.name}.executable in config, or give both "
                       "--frames A-B and --output FOLDER)")
    try:
        scene = ask(blender, local)
        if not output:
            if scene.is_movie:
                raise BlendSceneError(
                    f"the .blend renders a movie ({scene.file_format}); a farm renders frames: set an image "
                    "format in its Output properties, or give --output FOLDER for PNG frames")
            check_rules(scene, local)
    except BlendSceneError as exc:
        raise JobError(f"{source}: {exc}") from None
    start, end = frames if frames is not None else (scene.frame_start, scene.frame_end)
    if frames is None:
        if end < start:
            raise JobError(f"{source}: the .blend's frame range {start}-{end} ends before it starts; "
                           "give --frames A-B")
        if end - start + 1 > MAX_TASK_FRAMES:
            raise JobError(f"{source}: the .blend's frame range {start}-{end} is more than {MAX_TASK_FRAMES} "
                           "frames; give --frames A-B")
    if not 1 <= scene.frame_step <= MAX_STEP:
        raise JobError(f"{source}: the .blend's frame step {scene.frame_step} is not from 1 to {MAX_STEP}")
    settings: dict[str, Any] = {FRAME_STEP: scene.frame_step} if scene.frame_step != 1 else {}
    if not output:
        settings |= {SCENE_OUTPUT: scene.filepath, SCENE_OUTPUT_EXT: scene.file_extension,
                     SCENE_FORMAT: scene.file_format}
    elif not scene.is_movie:  # --output moves the frames, the .blend's image format stays (a movie: PNG frames)
        settings |= {SCENE_OUTPUT_EXT: scene.file_extension, SCENE_FORMAT: scene.file_format}
    return SceneFrames(start, end, scene.frame_step, settings=settings)


def _pov_is_animated(path: Path) -> bool:
    """Does the scene read the clock? Comments and strings do not count; includes are not followed."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_POV_SCAN + 1)
    except OSError as exc:
        raise JobError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_POV_SCAN:
        return True
    return bool(_POV_ANIMATED.search(_POV_NOISE.sub(" ", data.decode("utf-8", "replace"))))


def own_frame_files(settings: Mapping[str, Any], frames: list[int], scene_dir: Path,
                    local: Callable[[str], str]) -> list[Path] | None:
    """The files the scene's own output settings make for ``frames``; None when the job recorded none.

    Read on the agent from a job file anyone can write: wrong types are a ValueError (the item fails).
    """
    filepath, ext = settings.get(SCENE_OUTPUT), settings.get(SCENE_OUTPUT_EXT, "")
    if filepath is None:
        return None
    if not isinstance(filepath, str) or not filepath or len(filepath) > 4096 or not isinstance(ext, str) \
            or len(ext) > 16:
        raise ValueError(f"job setting {SCENE_OUTPUT!r} must be a path and {SCENE_OUTPUT_EXT!r} an extension")
    return [frame_file(filepath, ext, f, scene_dir, local) for f in frames]


_FORMAT_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


def own_format(settings: Mapping[str, Any]) -> tuple[str, str] | None:
    """The scene's own image format and extension (``OPEN_EXR``, ``.exr``) recorded at submit, or None.

    Kept when ``--output`` moves the frames elsewhere: the job sets the folder, not the format.
    Read on the agent from a job file anyone can write: anything but a format word and an
    extension is a ValueError (the item fails), never an argument for the renderer."""
    word, ext = settings.get(SCENE_FORMAT), settings.get(SCENE_OUTPUT_EXT)
    if word is None or ext is None:
        return None
    if not isinstance(word, str) or not _FORMAT_WORD.match(word) or not isinstance(ext, str) \
            or not _EXTENSION.match(ext):
        raise ValueError(f"job settings {SCENE_FORMAT!r} and {SCENE_OUTPUT_EXT!r} must be a format word like "
                         "'OPEN_EXR' and an extension like '.exr'")
    return word, ext


def frame_step(task: Mapping[str, Any]) -> int:
    """A range task's frame step (default 1); ValueError when it is not a whole number from 1 to MAX_STEP."""
    step = task.get("step", 1)
    if not isinstance(step, int) or isinstance(step, bool) or not 1 <= step <= MAX_STEP:
        raise ValueError(f"range task step must be a whole number from 1 to {MAX_STEP}, got {step!r}")
    return step
