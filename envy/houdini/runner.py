"""Envy's cache runner: hython runs it on a farm machine for one cache task.

    hython runner.py TASK_FILE [--local JSON]

It needs only Houdini's own Python (3.7 or later) and its ``hou`` module: no
Envy imports, standard library only. It opens the HIP file, sets each
parameter of the task as a value (``parm.set(value)``; nothing is ever pasted
into code or an expression), presses the node's button, checks that the node
reported no errors and that the cache folder is not empty, and writes the
descriptive JSON next to the cache.

``--local`` carries this machine's paths when the agent's path remap changed
them: ``{"hip": "/mnt/proj/fx/smoke.hip", "parms": {"file": "/mnt/..."}}``.

Output, one line each (docs/usd-and-houdini.md):

    ENVY_PROGRESS <percent>% <what is happening>      on stdout
    ENVY_ERROR <what went wrong>                       on stderr, then exit 1

Exit codes: 0 done, 1 the cache failed, 2 a bad task file or not run by hython.
Strings set on Houdini parameters are the parameter's raw text: Houdini still
expands its own variables (``$HIP``, ``$F4``) in them when it evaluates the
parameter, exactly as if the artist had typed the text into the field.
"""

from __future__ import annotations  # annotations stay text: fine on Houdini's Python 3.7

import json
import os
import re
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from typing import IO, Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_TASK = 2
INFO_SUFFIX = ".envy.json"
DEFAULT_OUTPUT_PARMS = ("sopoutput", "file")
TASK_KEYS = ("hip", "node", "button", "parms")
_FRAME_TOKEN = re.compile(r"\$\{?F\d*\}?")
_TRAILING_FRAME = re.compile(r"[._]-?\d+$")
_DOUBLE_EXTENSIONS = (".bgeo", ".geo", ".vdb", ".abc", ".usd")


class RunnerError(Exception):
    """The cache failed: the message says why, on one line."""


class BadTask(RunnerError):
    """The task file (or the command line) is not what the runner expects."""


# --- output lines ----------------------------------------------------------------------------


def _emit(stream: IO[str], text: str) -> None:
    line = " ".join(str(text).split()) + "\n"
    try:
        stream.write(line)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(line.encode(encoding, "backslashreplace").decode(encoding))
    stream.flush()


def progress(percent: int, what: str) -> None:
    _emit(sys.stdout, "ENVY_PROGRESS %d%% %s" % (percent, what))


def error(message: str) -> None:
    _emit(sys.stderr, "ENVY_ERROR %s" % message)


# --- the task --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    args = list(argv[1:])
    if not args or args[0].startswith("-"):
        raise BadTask("usage: hython runner.py TASK_FILE [--local JSON]")
    task_path, rest = args[0], args[1:]
    local: dict[str, Any] = {}
    while rest:
        if rest[0] == "--local" and len(rest) >= 2:
            try:
                local = json.loads(rest[1])
            except ValueError as exc:
                raise BadTask("--local is not valid JSON (%s)" % exc) from exc
            if not isinstance(local, dict):
                raise BadTask("--local must be a JSON object")
            rest = rest[2:]
        else:
            raise BadTask("unexpected argument %r" % rest[0])
    return task_path, local


def read_task(path: str, local: dict[str, Any]) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            task = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise BadTask("cannot read task file %s (%s)" % (path, exc)) from exc
    if not isinstance(task, dict) or task.get("type") != "hython":
        raise BadTask("%s is not a hython task file" % path)
    for key in TASK_KEYS:
        if key not in task:
            raise BadTask("task file lacks %r" % key)
    if not isinstance(task["parms"], dict):
        raise BadTask("task 'parms' must be an object")
    for key in ("hip", "node", "button"):
        if not isinstance(task[key], str) or not task[key]:
            raise BadTask("task %r must be text" % key)
    task = dict(task)
    task["hip_opened"] = local.get("hip") or task["hip"]
    parms = dict(task["parms"])
    for name, value in (local.get("parms") or {}).items():
        if name in parms:
            parms[name] = value
    task["parms"] = parms
    return task


# --- in Houdini ------------------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    """A hou exception's own message (str() of some only names the class)."""
    getter = getattr(exc, "instanceMessage", None)
    if callable(getter):
        try:
            text = getter()
            if text:
                return "%s: %s" % (type(exc).__name__, text)
        except Exception:
            pass
    return "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__


def as_houdini_value(value: Any) -> Any:
    """JSON value -> what parm.set takes: lists become tuples, true/false become 1/0."""
    if isinstance(value, list):
        return tuple(as_houdini_value(v) for v in value)
    if isinstance(value, bool):
        return int(value)
    return value


def plain(value: Any) -> Any:
    """A value read back from Houdini, as JSON can hold it."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def find_parm(hou: Any, node: Any, name: str, is_tuple: bool) -> Any:
    if name.startswith("/"):
        found = hou.parmTuple(name) if is_tuple else hou.parm(name)
    else:
        found = node.parmTuple(name) if is_tuple else node.parm(name)
    if found is None:
        where = name if name.startswith("/") else "%s on %s" % (name, node.path())
        raise RunnerError("no parameter%s %s" % (" tuple" if is_tuple else "", where))
    return found


def set_parms(hou: Any, node: Any, parms: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Set each parameter as a value; return what changed: {name: {"before": ..., "after": ...}}."""
    changed: dict[str, dict[str, Any]] = {}
    for name in sorted(parms):
        value = parms[name]
        is_tuple = isinstance(value, list)
        target = find_parm(hou, node, name, is_tuple)
        before = plain(target.eval())
        for single in (list(target) if is_tuple else [target]):
            if single.keyframes():
                # An animated or expression parameter would keep its keys: the job's value must win.
                single.deleteAllKeyframes()
        try:
            target.set(as_houdini_value(value))
        except Exception as exc:
            raise RunnerError("cannot set %s to %r: %s" % (name, value, describe(exc))) from exc
        changed[name] = {"before": before, "after": plain(target.eval())}
    return changed


def output_parm(node: Any, name: str | None) -> Any:
    names = [name] if name else list(DEFAULT_OUTPUT_PARMS)
    for candidate in names:
        found = node.parm(candidate)
        if found is not None:
            return found
    raise RunnerError(
        "node %s has no output file parameter (tried %s); set \"output_parm\" in the job"
        % (node.path(), ", ".join(names))
    )


def info_path(out_parm: Any) -> str:
    """``<cache folder>/<cache name without frame and extension>.envy.json``."""
    path = out_parm.evalAsString()
    folder, name = os.path.split(path)
    has_frame = bool(_FRAME_TOKEN.search(os.path.basename(out_parm.unexpandedString())))
    stem, ext = os.path.splitext(name)
    inner, inner_ext = os.path.splitext(stem)
    if inner_ext.lower() in _DOUBLE_EXTENSIONS:  # smoke.0001.bgeo.sc
        stem = inner
    if has_frame:
        stem = _TRAILING_FRAME.sub("", stem)
    return os.path.join(folder or ".", (stem or "cache") + INFO_SUFFIX)


def check_cache_written(folder: str) -> None:
    try:
        names = [n for n in os.listdir(folder) if not n.startswith(".") and not n.endswith(INFO_SUFFIX)]
    except OSError:
        names = []
    if not names:
        raise RunnerError("the cache wrote nothing into %s" % folder)


def write_json_atomically(path: str, data: dict[str, Any]) -> None:
    # Unique per machine and process: a taken-over job may still be finishing on its old host.
    unique = "%s-%d" % (re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()), os.getpid())
    temp = os.path.join(os.path.dirname(path) or ".", ".%s.envy-tmp-%s" % (os.path.basename(path), unique))
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)


def describe_cache(hou: Any, task: dict[str, Any], changed: dict[str, Any], output: str) -> dict[str, Any]:
    version = getattr(hou, "applicationVersionString", None)
    return {
        "envy_cache_info": 1,
        "name": task.get("name"),
        "hip": task["hip"],
        "hip_opened": task["hip_opened"],
        "node": task["node"],
        "button": task["button"],
        "parms_changed": changed,
        "parms_as_written": task.get("parms_as_written"),
        "job_number": task.get("job_number"),
        "job_count": task.get("job_count"),
        "version": task.get("version"),
        "version_folder": task.get("version_folder"),
        "job_created_at": task.get("created_at"),
        "job_created_by": task.get("created_by"),
        "job_created_host": task.get("created_host"),
        "job_file": task.get("job_file"),
        "comment": task.get("comment", ""),
        "output": output,
        "cached_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cached_on": socket.gethostname(),
        "houdini": version() if callable(version) else None,
    }


def run(hou: Any, task: dict[str, Any]) -> None:
    progress(1, "opening %s" % task["hip_opened"])
    try:
        hou.hipFile.load(task["hip_opened"], suppress_save_prompt=True, ignore_load_warnings=True)
    except Exception as exc:
        raise RunnerError("cannot open %s: %s" % (task["hip_opened"], describe(exc))) from exc
    progress(20, "opened %s" % task["hip_opened"])
    node = hou.node(task["node"])
    if node is None:
        raise RunnerError("no node %s in %s" % (task["node"], task["hip_opened"]))
    changed = set_parms(hou, node, task["parms"])
    progress(30, "set %d parameter%s" % (len(changed), "" if len(changed) == 1 else "s"))
    out_parm = output_parm(node, task.get("output_parm"))
    button = node.parm(task["button"])
    if button is None:
        raise RunnerError("node %s has no button %r" % (task["node"], task["button"]))
    progress(35, "pressing %s on %s" % (task["button"], task["node"]))
    try:
        button.pressButton()
    except Exception as exc:
        raise RunnerError("%s failed: %s" % (task["node"], describe(exc))) from exc
    problems = [" ".join(str(e).split()) for e in (node.errors() or ())]
    if problems:
        raise RunnerError("%s reported: %s" % (task["node"], "; ".join(problems)[:500]))
    progress(90, "cooked %s" % task["node"])
    output = out_parm.evalAsString()
    check_cache_written(os.path.dirname(output) or ".")
    target = info_path(out_parm)
    write_json_atomically(target, describe_cache(hou, task, changed, output))
    progress(100, "done; wrote %s" % target)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    try:
        task_path, local = parse_args(argv)
        task = read_task(task_path, local)
    except BadTask as exc:
        error(str(exc))
        return EXIT_BAD_TASK
    try:
        import hou
    except ImportError:
        error("no 'hou' module: run this script with Houdini's hython")
        return EXIT_BAD_TASK
    try:
        run(hou, task)
    except RunnerError as exc:
        error(str(exc))
        return EXIT_FAILED
    except Exception as exc:  # a hou error we did not expect: say what, keep the traceback in the log
        traceback.print_exc()
        error(describe(exc))
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
