"""Reading files that others write on the share: bounded, regular, and parsed with limits.

Every file an agent or Envy IO reads from the share goes through
:func:`read_share_file` (ENGINEERING §1.12, issue 9 Must-hold 5):

* it is opened non-blocking and checked on the open handle to be a regular
  file, so a FIFO, a device, a socket or a folder put in its place is refused
  instead of blocking a thread for ever;
* at most its kind's cap plus one byte is read, so a 2 GB (sparse) file costs
  no more memory than a file one byte over the cap; a file over the cap is
  refused whole (never half-parsed);
* JSON and YAML are parsed with a nesting cap, YAML without aliases (an alias
  bomb is a few hundred bytes that expand to gigabytes when walked).

Every refusal is a :class:`ShareFileError` (a ValueError: "this file is bad"),
one line naming the file and what is allowed. An OSError still means "the
share is failing" and a FileNotFoundError "not there (yet)", as before, so
callers keep their outage handling.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from envy.platform.files import NotARegularFile, read_regular
from envy.share.fresh import FreshFile
from envy.share.fs import PathLike, ShareFS

# libyaml's parser when PyYAML has it (the wheels do): the same safe types, ten times faster than
# the pure-Python one (a render() start parses every built-in renderer profile).
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KIB = 1024
MIB = 1024 * KIB

# Per kind of file: the largest a legitimate one gets, with a wide margin.
CAPS: dict[str, int] = {
    "instructions": 4 * MIB,  # thousands of commands; pruned by Envy IO at every write
    "status": 256 * KIB,  # one agent's status: a few KiB even with many workers
    "job": 1 * MIB,
    "task": 1 * MIB,
    "output record": 256 * KIB,  # a frame's files (MAX_FILES paths), written by the agent that completed it
    "seat": 4 * KIB,
    "policy": 1 * MIB,
    "config": 1 * MIB,
    "profile": 1 * MIB,
    "user module": 1 * MIB,
    "sentinel": 64 * KIB,
    "json": 1 * MIB,  # any other small JSON file Envy writes
}
# Deeper than any Envy file is; far from Python's recursion limit.
MAX_DEPTH = 32
# A YAML document with more nodes than this is not a hand-written config.
MAX_YAML_NODES = 200_000


# Signed mode's question for a file that chooses code (envy/protocol/file_signing.py: SignedFiles.problem):
# why the bytes read from this path may not choose what runs here, or None when they may.
FileTrust = Callable[[Path, bytes], "str | None"]


class ShareFileError(ValueError):
    """A file on the share that is refused: not a regular file, too big, too deep, or not parseable."""


def cap_for(kind: str) -> int:
    try:
        return CAPS[kind]
    except KeyError:
        raise ValueError(f"unknown kind of share file {kind!r}; known: {', '.join(sorted(CAPS))}") from None


def read_share_file(fs: ShareFS, path: PathLike, kind: str, *, partial: bool = False) -> bytes:
    """The bytes of ``path``, a regular file no bigger than the cap for ``kind``.

    ``partial``: return the first ``cap`` bytes of a bigger file instead of
    refusing it (Envy IO rewriting the instruction file keeps what it can).
    Raises ShareFileError for a refused file, FileNotFoundError/OSError as the share does.
    """
    cap = cap_for(kind)
    try:
        data = fs.read_bounded(path, cap + 1)
    except NotARegularFile as exc:
        raise ShareFileError(f"{os.fspath(path)}: refused, {exc.strerror}; a {kind} file must be a plain file") \
            from None
    if len(data) > cap:
        if partial:
            return data[:cap]
        raise ShareFileError(f"{os.fspath(path)}: refused, larger than the {_size(cap)} allowed for a {kind} file")
    return data


def read_fresh_share_file(fs: ShareFS, path: PathLike, kind: str, known: str | None) -> FreshFile | None:
    """The fresh poll's read (``ShareFS.read_if_changed``), refused like ``read_share_file``:
    None when the bytes are still those whose digest is ``known``; ShareFileError for a
    file that is not a plain file or is over its kind's cap (only the cap is ever read)."""
    cap = cap_for(kind)
    try:
        fresh = fs.read_if_changed(path, known, cap)
    except NotARegularFile as exc:
        raise ShareFileError(f"{os.fspath(path)}: refused, {exc.strerror}; a {kind} file must be a plain file") \
            from None
    if fresh is not None and fresh.truncated:
        raise ShareFileError(f"{os.fspath(path)}: refused, larger than the {_size(cap)} allowed for a {kind} file")
    return fresh


def read_config_file(path: PathLike, kind: str) -> bytes:
    """``read_share_file`` for a settings file that may be local or on the share (profiles, config).

    Not through the ShareFS seam: such files are read where they are, at start and on reload.
    """
    cap = cap_for(kind)
    try:
        data = read_regular(os.fspath(path), cap + 1)
    except NotARegularFile as exc:
        raise ShareFileError(f"{os.fspath(path)}: refused, {exc.strerror}; a {kind} file must be a plain file") \
            from None
    if len(data) > cap:
        raise ShareFileError(f"{os.fspath(path)}: refused, larger than the {_size(cap)} allowed for a {kind} file")
    return data


def read_share_json(fs: ShareFS, path: PathLike, kind: str) -> Any:
    """``read_share_file`` then JSON with a nesting cap; ShareFileError when it is not valid."""
    return load_json_bounded(read_share_file(fs, path, kind), os.fspath(path))


def load_json_bounded(data: bytes, where: str, max_depth: int = MAX_DEPTH) -> Any:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else f"{exc.__class__.__name__}: {exc}"
        raise ShareFileError(f"{where}: not valid JSON ({reason})") from None
    depth = nesting_depth(value, max_depth)
    if depth > max_depth:
        raise ShareFileError(f"{where}: nested too deeply (more than {max_depth} levels)")
    return value


def load_yaml_bounded(text: str, where: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_YAML_NODES) -> Any:
    """``yaml.safe_load`` after :func:`check_yaml_shape`; ShareFileError for anything refused."""
    check_yaml_shape(text, where, max_depth, max_nodes)
    try:
        return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader (C or Python)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ShareFileError(f"{where}: not valid YAML ({first})") from None
    except RecursionError:
        raise ShareFileError(f"{where}: nested too deeply") from None


def check_yaml_shape(text: str, where: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_YAML_NODES) -> None:
    """Refuse aliases, deep nesting and huge documents by walking parser events.

    The walk builds nothing and does not recurse, so a hostile document is
    refused before the recursive constructor ever sees it. Syntax errors are
    left to the caller's own ``safe_load`` (which reports them its own way).
    """
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=SAFE_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise ShareFileError(f"{where}: YAML aliases (*name) are not allowed in Envy files")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > max_depth:
                    raise ShareFileError(f"{where}: nested too deeply (more than {max_depth} levels)")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > max_nodes:
                    raise ShareFileError(f"{where}: more than {max_nodes} YAML values")
    except yaml.YAMLError as exc:
        if _too_deep(exc):  # libyaml's own nesting limit (newer wheels) can speak before ours
            raise ShareFileError(f"{where}: nested too deeply (more than {max_depth} levels)") from None
        return  # a syntax error: the caller's loader reports it its own way


def _too_deep(exc: yaml.YAMLError) -> bool:
    text = str(exc).lower()
    return "nesting depth" in text or "flow level" in text


def nesting_depth(value: Any, stop_at: int = MAX_DEPTH) -> int:
    """How deep lists and dicts nest in ``value`` (iteratively; stops counting past ``stop_at``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > stop_at:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // KIB} KiB"
