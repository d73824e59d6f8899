"""Submitting a folder of per-frame USD files as husk tasks (``envy-io submit DIR --delegate X``).

Every file is checked first (check.py); on any problem nothing is written.
Then one task file per frame, or per frame and tile, goes into
``jobs/<id>/tasks/`` and the job file is written last (submit.write_tasks),
so agents never see half a job.

A task holds husk's argv as a list (no shell, nothing typed into one) plus
the fields an agent needs to adapt it to its own machine: the USD file and
the output as the submitter wrote them (each agent applies its path remap),
the delegate, the frame and the tile. husk tile indices count from 0; with
``--tile-suffix _tile%02d`` husk writes ``shot.0001_tile04.exr`` for tile 4.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envy.platform.host import host_name, os_name, user_name
from envy.render.jobs import Job, JobError, list_jobs, new_job_id
from envy.render.remap import PathRemap, RemapError
from envy.render.submit import TASK_EXT, waits_for, write_tasks
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.usd.check import SETTINGS_PRIM, USD_EXTENSIONS, UsdFrame, check_usd_folder

DEFAULT_DELEGATE = "BRAY_HdKarma"
DEFAULT_TILE_SUFFIX = "_tile%02d"
DEFAULT_IMAGE_EXT = ".exr"
OUTPUT_FOLDER = "render"  # the default output folder, inside the USD folder
MAX_TILES = 64  # per axis: 64x64 = 4096 tasks per frame is already absurd

_DELEGATE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SUFFIX_RE = re.compile(r"^[A-Za-z0-9_.-]*%0?\d*d[A-Za-z0-9_.-]*$")


@dataclass
class UsdSubmitRequest:
    """What ``envy-io submit DIR --delegate X [--tiles 3x3]`` asks for. Paths as the submitter writes them."""

    folder: str
    delegate: str = DEFAULT_DELEGATE
    tiles: tuple[int, int] | None = None
    priority: int = 50
    output: str | None = None  # a folder; default <folder>/render
    name: str | None = None
    pattern: str | None = None  # only files matching this glob, e.g. "shot.*.usd"
    max_retries: int | None = None
    remap: Sequence[str] = ()
    paused: bool = False
    tile_suffix: str = DEFAULT_TILE_SUFFIX
    image_ext: str = DEFAULT_IMAGE_EXT
    extra_args: Sequence[str] = ()  # more husk options, e.g. ["--res", "1920", "1080"]
    use_usd_core: bool | None = None  # None: when installed
    settings: dict[str, Any] = field(default_factory=dict)
    after: Sequence[str] = ()  # jobs (names or ids) this one waits for (envy/render/dependencies.py)
    timeout: int | None = None  # seconds a render may run / print nothing (None: the farm's; envy/render/limits.py)
    stall: int | None = None


def parse_tiles(text: str) -> tuple[int, int]:
    """``3x3`` -> (3, 3): tiles across and down."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", text)
    if not m:
        raise JobError(f"--tiles {text!r} is not COLUMNSxROWS, e.g. 3x3")
    return _check_tiles((int(m.group(1)), int(m.group(2))))


def _check_tiles(tiles: Sequence[int]) -> tuple[int, int]:
    if len(tiles) != 2 or not all(
        isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_TILES for n in tiles
    ):
        raise JobError(f"tiles must be two whole numbers from 1 to {MAX_TILES} (columns, rows), got {tuple(tiles)!r}")
    return int(tiles[0]), int(tiles[1])


def check_delegate(delegate: str) -> str:
    if not isinstance(delegate, str) or not _DELEGATE_RE.match(delegate):
        raise JobError(
            f"--delegate {delegate!r} is not a Hydra delegate name like BRAY_HdKarma or HdStormRendererPlugin"
        )
    return delegate


def tile_file_name(name: str, suffix: str, index: int) -> str:
    """The file husk writes for one tile: the suffix, filled with the index, before the extension."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    return f"{stem}{suffix % index}{'.' + ext if dot else ''}"


def husk_argv(
    usd: str, frame: int, delegate: str, output: str | None,
    tile: dict[str, Any] | None = None, extra_args: Sequence[str] = (),
) -> list[str]:
    """husk's command line for one frame (and tile). argv[0] is "husk": each agent puts its own husk there."""
    argv = ["husk", "--renderer", delegate, "--settings", SETTINGS_PRIM,
            "--frame", str(frame), "--frame-count", "1", "--verbose", "a2"]
    if output is not None:
        argv += ["--make-output-path", "--output", output]
    if tile is not None:
        columns, rows = tile["count"]
        argv += ["--tile-count", str(columns), str(rows), "--tile-index", str(tile["index"]),
                 "--tile-suffix", tile["suffix"]]
    argv += list(extra_args)
    argv.append(usd)
    return argv


def husk_tasks(req: UsdSubmitRequest, frames: Sequence[UsdFrame]) -> list[tuple[str, dict[str, Any]]]:
    """(task file name, task) for every frame and tile; paths as the submitter wrote them."""
    sep = _sep_of(req.folder)
    folder = req.folder.rstrip("/\\")
    out_dir = output_folder(req)
    tasks: list[tuple[str, dict[str, Any]]] = []
    for found in frames:
        name = found.path.name
        stem = _usd_stem(name)
        usd = f"{folder}{sep}{name}"
        output = f"{out_dir}{_sep_of(out_dir)}{stem}{req.image_ext}"
        tiles = [None] if req.tiles is None else list(range(req.tiles[0] * req.tiles[1]))
        width = max(2, len(str(len(tiles) - 1)))
        for index in tiles:
            tile = (
                None if index is None else {"count": list(req.tiles or ()), "index": index, "suffix": req.tile_suffix}
            )
            task = {
                "type": "husk",
                "argv": husk_argv(usd, found.frame, req.delegate, output, tile, req.extra_args),
                "usd": usd,
                "delegate": req.delegate,
                "frame": found.frame,
                "frame_from": found.frame_from,
                "tile": tile,
                "output": output,
            }
            task_name = f"{stem}{TASK_EXT}" if index is None else f"{stem}.tile{index:0{width}d}{TASK_EXT}"
            tasks.append((task_name, task))
    return tasks


def submit_usd(
    layout: ShareLayout,
    folder: str,
    delegate: str = DEFAULT_DELEGATE,
    tiles: tuple[int, int] | None = None,
    priority: int = 50,
    output: str | None = None,
    *,
    name: str | None = None,
    pattern: str | None = None,
    max_retries: int | None = None,
    remap: Sequence[str] = (),
    paused: bool = False,
    tile_suffix: str = DEFAULT_TILE_SUFFIX,
    image_ext: str = DEFAULT_IMAGE_EXT,
    extra_args: Sequence[str] = (),
    use_usd_core: bool | None = None,
    fs: ShareFS,
    local_os: str | None = None,
) -> Job:
    """Check every USD file of ``folder``, then write one husk task per frame (and tile) and the job.

    ``folder`` and ``output`` are written as the submitter sees them (``Z:/proj/usd``);
    ``local_os`` (with ``remap``) says how to reach ``folder`` from this machine.
    Raises ``JobError`` (``UsdCheckError`` names each bad file) before writing anything.
    """
    req = UsdSubmitRequest(
        folder=folder, delegate=delegate, tiles=tiles, priority=priority, output=output, name=name,
        pattern=pattern, max_retries=max_retries, remap=remap, paused=paused, tile_suffix=tile_suffix,
        image_ext=image_ext, extra_args=extra_args, use_usd_core=use_usd_core,
    )
    return submit_usd_request(layout, req, fs, local_os)


def submit_usd_request(
    layout: ShareLayout, req: UsdSubmitRequest, fs: ShareFS, local_os: str | None = None,
    local_remap: PathRemap | None = None,
) -> Job:
    """``submit_usd`` for a prepared request.

    ``local_remap`` (default: the request's own rules) is how this machine
    reaches the folder, e.g. the config's rules plus ``--remap``; only
    ``req.remap`` is stored in the job (agents have their own config).
    """
    layout.require(fs)
    _validate(req)
    try:
        remap = local_remap if local_remap is not None else PathRemap.parse(list(req.remap))
        local = Path(remap.apply(req.folder, local_os)) if local_os else Path(req.folder)
    except RemapError as exc:
        raise JobError(str(exc)) from None
    if not local.is_dir():
        raise JobError(f"{req.folder}: no such folder (for another OS's path, add --remap FROM,TO)")
    frames = check_usd_folder(local, req.pattern, req.use_usd_core, fs=fs)
    tasks = husk_tasks(req, frames)
    now = time.time()
    job = Job(
        id=new_job_id(local.name, now), name=req.name or "/".join(local.parts[-2:]), kind="tasks",
        renderer="husk", source=req.folder, extensions=[TASK_EXT], priority=req.priority,
        state="paused" if req.paused else "active", output=output_folder(req),
        frames=_frame_range(frames), max_retries=req.max_retries, remap=list(req.remap),
        created_by=user_name(), created_host=host_name(),
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        settings={**req.settings, "delegate": req.delegate, "tiles": list(req.tiles) if req.tiles else None,
                  "tile_suffix": req.tile_suffix if req.tiles else None, "frame_count": len(frames)},
        timeout=req.timeout, stall=req.stall,
    )
    waits_for(job, req.after, list_jobs(layout, fs)[0])
    job.validate()
    write_tasks(layout, job, tasks, fs)
    return job


def submit_usd_from_cli(layout: ShareLayout, args: Any, remap: PathRemap, fs: ShareFS) -> Job:
    """The husk path of ``envy-io submit DIR --delegate X [--tiles 3x3]`` (envy_io/commands/jobs.py).

    ``args`` is the parsed ``submit`` command line (source, delegate, tiles,
    priority, output, name, retries, remap, paused; optionally pattern and
    tile_suffix); ``remap`` is how this machine reaches ``source`` (config
    rules plus ``--remap``). Raises ``JobError`` (one line) for bad input,
    before anything is written.
    """
    if getattr(args, "frames", None):
        raise JobError("--frames is not used for a USD folder: each USD file is one frame")
    if getattr(args, "chunk", 1) not in (None, 1):
        raise JobError("--chunk is not used for a USD folder: each frame (or tile) is one task")
    renderer = getattr(args, "renderer", None)
    if renderer and renderer.lower() != "husk":
        raise JobError(f"--delegate and --tiles are for husk; --renderer {renderer} cannot render them")
    tiles = getattr(args, "tiles", None)
    req = UsdSubmitRequest(
        folder=args.source, delegate=getattr(args, "delegate", None) or DEFAULT_DELEGATE,
        tiles=parse_tiles(tiles) if tiles else None, priority=args.priority, output=args.output, name=args.name,
        pattern=getattr(args, "pattern", None), max_retries=getattr(args, "retries", None),
        remap=list(getattr(args, "remap", None) or []), paused=bool(getattr(args, "paused", False)),
        tile_suffix=getattr(args, "tile_suffix", None) or DEFAULT_TILE_SUFFIX,
        after=list(getattr(args, "after", None) or []),
        timeout=getattr(args, "timeout", None), stall=getattr(args, "stall", None),
    )
    return submit_usd_request(layout, req, fs, local_os=os_name(), local_remap=remap)


def _validate(req: UsdSubmitRequest) -> None:
    check_delegate(req.delegate)
    if req.tiles is not None:
        req.tiles = _check_tiles(req.tiles)
    if isinstance(req.priority, bool) or not isinstance(req.priority, int) or not 0 <= req.priority <= 100:
        raise JobError(f"--priority must be from 0 to 100, got {req.priority!r}")
    if req.max_retries is not None and (
        isinstance(req.max_retries, bool) or not isinstance(req.max_retries, int) or req.max_retries < 0
    ):
        raise JobError(f"--max-retries must be a whole number >= 0, got {req.max_retries!r}")
    if not _SUFFIX_RE.match(req.tile_suffix):
        raise JobError(
            f"--tile-suffix {req.tile_suffix!r} must hold one %d (e.g. _tile%02d) and only letters, digits, _ . -"
        )
    if not re.fullmatch(r"\.[A-Za-z0-9]+", req.image_ext):
        raise JobError(f"image extension {req.image_ext!r} must look like .exr")
    for item in req.extra_args:
        if not isinstance(item, str) or "\x00" in item:
            raise JobError("extra husk arguments must be text")
    for label, path in (("folder", req.folder), ("--output", req.output)):
        if path is not None and (not path or path.startswith("-") or "\x00" in path):
            raise JobError(f"{label} {path!r} is not a usable path")


def _usd_stem(name: str) -> str:
    lower = name.lower()
    for ext in sorted(USD_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return name[: -len(ext)]
    return name


def _sep_of(path: str) -> str:
    """The separator the submitter used (a path written on Windows may use backslashes only)."""
    return "\\" if "\\" in path and "/" not in path else "/"


def output_folder(req: UsdSubmitRequest) -> str:
    """Where the images go, as the submitter writes it: ``--output``, or ``<folder>/render``."""
    if req.output:
        return req.output.rstrip("/\\")
    folder = req.folder.rstrip("/\\")
    return f"{folder}{_sep_of(req.folder)}{OUTPUT_FOLDER}"


def _frame_range(frames: Sequence[UsdFrame]) -> str:
    return f"{frames[0].frame}-{frames[-1].frame}"
