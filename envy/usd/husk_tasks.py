"""How an agent runs one husk task: its own husk, its own paths, a temp output name.

The task's argv (written by submit_usd) is used as it is, with three items
adapted to this machine: argv[0] becomes this agent's husk (the ``husk``
profile, or ``renderers.husk.executable`` in config), the USD file and the
output path go through the path remap, and the output is rendered to a name
carrying our nonce, moved into place only after the ownership check
(worker.py), so an agent that lost its claim never overwrites the new
owner's image. Progress comes from husk's ``ALF_PROGRESS n%`` lines (the
profile's regex); a non-zero exit or a missing/empty image fails the try.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PureWindowsPath
from typing import Any

from envy.render.jobs import JobError
from envy.render.plans import Output, PlanError, PlanInput, PlanRefused, WorkPlan
from envy.usd.submit_usd import check_delegate, tile_file_name

_OUTPUT_FLAGS = ("--output", "-o")


def plan_husk_task(inp: PlanInput, task: Mapping[str, Any]) -> WorkPlan:
    argv = _text_list(task.get("argv"), "argv")
    usd = _text(task.get("usd"), "usd")
    frame = task.get("frame")
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise PlanError("husk task needs a whole-number 'frame'")
    try:
        check_delegate(task.get("delegate"))  # type: ignore[arg-type]
    except JobError as exc:
        raise PlanError(f"husk task: {exc}") from None
    if len(argv) < 2 or argv[-1] != usd:
        raise PlanError("husk task: the last argv item must be the 'usd' file")
    tile = _tile(task.get("tile"))

    profile = inp.profile("husk")
    _check_options(inp, argv)
    local_usd = inp.confined(usd, "USD file")
    if not inp.is_file(local_usd):
        raise PlanError(
            f"USD file not found here: {local_usd} (from {usd}; is the share mounted, is a --remap rule missing?)"
        )
    command = list(argv)
    command[0] = inp.executable(profile)
    command[-1] = str(local_usd)

    outputs: list[Output] = []
    output = task.get("output")
    if output is not None:
        output = _text(output, "output")
        where = _output_index(argv, output)
        final = inp.confined(output, "output")
        temp = final.with_name(f"{_stem(final.name)}.envy~tmp~{inp.nonce}{_ext(final.name)}")
        command[where] = str(temp)
        inp.make_output_folder(final.parent)
        if tile is not None:
            final = final.with_name(tile_file_name(final.name, tile["suffix"], tile["index"]))
            temp = temp.with_name(tile_file_name(temp.name, tile["suffix"], tile["index"]))
        outputs.append(Output(inp.confined_local(temp, "output", output=True),
                              inp.confined_local(final, "output", output=True)))

    threads = inp.threads()
    if threads and "--threads" not in command and "-j" not in command:
        command[-1:-1] = ["--threads", str(threads)]
    label = f"{local_usd.name} frame {frame}" + (f" tile {tile['index']}" if tile else "")
    return WorkPlan(command, local_usd.parent, label, profile, outputs, [frame])


# Values after these options are USD prim paths ("/Render/rendersettings"), not files.
_PRIM_OPTIONS = frozenset({"--settings", "-s", "--camera", "-c", "--purpose"})


def _check_options(inp: PlanInput, argv: list[str]) -> None:
    """No option that runs a script; every other absolute path in argv confined like the USD file.

    husk's ``--prerender-script`` and its kin run Python: a task file is written by whoever can
    write the share, so they are refused whatever their value.
    """
    for i, item in enumerate(argv[1:-1], start=1):
        if item.startswith("-") and "script" in item.lower():
            raise PlanRefused(f"husk task: option {item} runs a script; it is not allowed in a task")
        if argv[i - 1] in _PRIM_OPTIONS or argv[i - 1] in _OUTPUT_FLAGS or item.startswith("-"):
            continue
        climbs = ".." in item.replace("\\", "/").split("/")  # relative to the USD folder, but out of it
        if Path(item).is_absolute() or PureWindowsPath(item).drive or climbs:
            inp.confined(item, f"husk argument {argv[i - 1]}")


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise PlanError(f"husk task needs '{key}' as text")
    return value


def _text_list(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and "\x00" not in v for v in value):
        raise PlanError(f"husk task needs '{key}' as a list of text items")
    return list(value)


def _tile(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    ok = (
        isinstance(value, dict)
        and isinstance(value.get("index"), int) and not isinstance(value.get("index"), bool)
        and isinstance(value.get("suffix"), str) and "%" in value["suffix"]
        and isinstance(value.get("count"), list) and len(value["count"]) == 2
    )
    if not ok:
        raise PlanError("husk task: 'tile' must be {count: [columns, rows], index: N, suffix: '_tile%02d'}")
    try:
        value["suffix"] % value["index"]
    except (TypeError, ValueError):
        raise PlanError(f"husk task: tile suffix {value['suffix']!r} must hold one %d") from None
    return dict(value)


def _output_index(argv: list[str], output: str) -> int:
    """Where the output path sits in argv (after --output or -o); it must be the task's 'output'."""
    for i, item in enumerate(argv[:-1]):
        if item in _OUTPUT_FLAGS:
            if argv[i + 1] != output:
                raise PlanError("husk task: the argv output does not match 'output'")
            return i + 1
    raise PlanError("husk task has an 'output' but no --output in its argv")


def _stem(name: str) -> str:
    return name.rpartition(".")[0] or name


def _ext(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f".{ext}" if dot and stem else ""

