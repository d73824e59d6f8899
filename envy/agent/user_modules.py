"""Load the user's own functions: ``Envy_Functions.py`` (NV, run on agents) and ``IO_functions.py``
(IO, run in the shell).

Loaded with importlib from the user's folder on the share. A module that
fails to import is reported (one line plus the traceback at debug level) and
treated as empty: a typo in a student's file must never stop an agent.
Only public functions defined in the module itself are callable.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from envy.share.bounded import FileTrust, ShareFileError, read_share_file
from envy.share.fs import ShareFS

log = logging.getLogger(__name__)

NV_FILE = "Envy_Functions.py"
IO_FILE = "IO_functions.py"


@dataclass
class UserModule:
    path: Path
    functions: dict[str, Callable[..., object]] = field(default_factory=dict)
    error: str | None = None
    module: ModuleType | None = None

    def names(self) -> list[str]:
        return sorted(self.functions)


def load_user_module(path: Path, label: str, fs: ShareFS | None = None,
                     trust: FileTrust | None = None) -> UserModule:
    """Import ``path`` freshly (no cached copy) and collect its public functions.

    With ``fs`` the source is read through the share seam, so a share error
    (EIO, ESTALE, ENXIO, EACCES: seen for real on an SMB client at start-up)
    becomes the module's error, logged once, and never an exception: the agent
    keeps answering built-in commands and loads the module at the next ``reload()``.
    ``trust`` (signed mode, with ``fs``) refuses a module not signed with the farm key:
    its functions run on every agent of that user, so it chooses code like a command line.
    """
    result = UserModule(path)
    module_name = f"envy_user_{label}_{abs(hash(str(path)))}"
    if fs is not None:
        try:
            # Bounded and regular (issue 9 Must-hold 5): a FIFO or a 2 GB file is refused, not read.
            source = read_share_file(fs, path, "user module")
        except FileNotFoundError:
            result.error = f"{path} not found"
            return result
        except OSError as exc:
            result.error = f"cannot read {path}: {exc.strerror or exc}"
            log.warning("%s (functions unavailable until the next reload())", result.error)
            return result
        except ShareFileError as exc:
            result.error = f"{exc}; not loaded"
            log.warning("%s", result.error)
            return result
        problem = trust(path, source) if trust is not None else None
        if problem is not None:
            result.error = problem
            log.error("%s", problem)
            return result
        try:
            code = compile(source, str(path), "exec")
            module = ModuleType(module_name)
            module.__file__ = str(path)
            exec(code, module.__dict__)  # noqa: S102 - the user's own module, as importlib would run it
        except BaseException as exc:  # a user module may raise anything, even SystemExit
            if isinstance(exc, KeyboardInterrupt):
                raise
            return _failed(result, path, exc)
    else:
        try:
            if not path.is_file():
                result.error = f"{path} not found"
                return result
        except OSError as exc:
            result.error = f"cannot read {path}: {exc.strerror or exc}"
            log.warning("%s", result.error)
            return result
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules.pop(module_name, None)
            spec.loader.exec_module(module)
        except BaseException as exc:  # a user module may raise anything, even SystemExit
            if isinstance(exc, KeyboardInterrupt):
                raise
            return _failed(result, path, exc)
    result.module = module
    result.functions = {
        name: obj
        for name, obj in vars(module).items()
        if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module_name
    }
    return result


def _failed(result: UserModule, path: Path, exc: BaseException) -> UserModule:
    result.error = f"{path.name} failed to load: {exc.__class__.__name__}: {exc}".splitlines()[0]
    log.warning("%s", result.error)
    log.debug("traceback of %s", path, exc_info=True)
    return result


def call_user_function(func: Callable[..., object], context: object, args: tuple, kwargs: dict) -> object:
    """Call a user function, passing the context first when its first parameter is named ``agent`` or ``io``."""
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        params = []
    if params and params[0] in ("agent", "io"):
        return func(context, *args, **kwargs)
    return func(*args, **kwargs)
