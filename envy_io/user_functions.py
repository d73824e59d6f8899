"""The user's own functions, as Envy IO sees them.

``Envy_Functions.py`` (NV) runs on the agents. The shell only needs its
function *names* to check lines before sending, so it reads them with
``ast`` and never imports the file: NV code often needs software that only the
render machines have (``hou``, ``maya``), and importing it here could run
anything at import time. ``IO_functions.py`` (IO) runs in the shell itself and
is imported with the agent's own loader. Both are re-read when they change.
"""

from __future__ import annotations

import ast
import inspect
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from envy.agent.user_modules import IO_FILE, NV_FILE, UserModule, load_user_module

log = logging.getLogger(__name__)

# A user module is a page of functions; anything this big is not one.
MAX_NV_FILE_BYTES = 2 * 1024 * 1024
# Re-check the files at most this often (each check is one stat on the share).
RECHECK_S = 1.0


@dataclass(frozen=True)
class NvFunctions:
    """Public function names (with their one-line summaries) found in Envy_Functions.py."""

    path: Path
    summaries: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # set when the file is missing or unreadable: names are then not checked

    @property
    def names(self) -> list[str] | None:
        """The names to check NV.* calls against; None accepts any public name."""
        return None if self.error else sorted(self.summaries)


def read_nv_functions(path: Path) -> NvFunctions:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return NvFunctions(path, error=f"{path.name} not found in {path.parent}")
    except OSError as exc:
        return NvFunctions(path, error=f"cannot read {path.name}: {exc.strerror or exc}")
    if len(data) > MAX_NV_FILE_BYTES:
        return NvFunctions(path, error=f"{path.name} is larger than {MAX_NV_FILE_BYTES} bytes")
    try:
        tree = ast.parse(data, filename=str(path))
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        where = f" line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
        reason = getattr(exc, "msg", None) or type(exc).__name__
        return NvFunctions(path, error=f"{path.name}{where}: {reason}")
    return NvFunctions(path, _public_functions(tree.body))


def _public_functions(body: list[ast.stmt]) -> dict[str, str]:
    """Module-level ``def``s, including those under ``if``/``try``/``with`` (platform switches)."""
    found: dict[str, str] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            found[node.name] = _summary(ast.get_docstring(node))
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            nested = [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                nested += handler.body
            found.update(_public_functions(nested))
    return found


def _summary(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class UserFunctions:
    """The NV names and the IO module of one user, each re-read when its file changes.

    The two are loaded separately: ``envy-io send`` needs only the NV names and
    must not import (run) IO_functions.py.
    """

    def __init__(self, user_dir: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.user_dir = user_dir
        self.clock = clock
        self._nv: NvFunctions | None = None
        self._io: UserModule | None = None
        self._signatures: dict[str, tuple[int, int] | None] = {}
        self._checked_at: dict[str, float] = {}

    @property
    def nv_path(self) -> Path:
        return self.user_dir / NV_FILE

    @property
    def io_path(self) -> Path:
        return self.user_dir / IO_FILE

    def _changed(self, key: str, path: Path, loaded: bool) -> bool:
        """True when ``path`` must be (re)read; stats it at most once per RECHECK_S."""
        now = self.clock()
        if loaded and now - self._checked_at.get(key, float("-inf")) < RECHECK_S:
            return False
        self._checked_at[key] = now
        signature = _signature(path)
        if loaded and signature == self._signatures.get(key):
            return False
        self._signatures[key] = signature
        return True

    @property
    def nv(self) -> NvFunctions:
        if self._changed("nv", self.nv_path, self._nv is not None) or self._nv is None:
            self._nv = read_nv_functions(self.nv_path)
        return self._nv

    @property
    def io(self) -> UserModule:
        if self._changed("io", self.io_path, self._io is not None) or self._io is None:
            if self._io is not None:
                log.info("reloading %s", self.io_path)
            self._io = load_user_module(self.io_path, "io")
        return self._io

    def io_summaries(self) -> dict[str, str]:
        return {name: _summary(inspect.getdoc(func)) for name, func in self.io.functions.items()}
