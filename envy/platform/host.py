"""Facts about this machine: its name, address, user and local folders."""

from __future__ import annotations

import getpass
import os
import socket
import sys
from pathlib import Path

from envy.platform.dirs import LocalDirs

# Characters we never allow in a host name: they are separators in claim names
# (``~``) or path/selector syntax.
_FORBIDDEN_HOST_CHARS = set("~/\\:*?\"<>| \t\r\n")


def os_name() -> str:
    """``windows``, ``darwin`` or ``linux`` (other POSIX systems count as linux)."""
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"


def host_name() -> str:
    """The short machine name, e.g. ``LAB3-03`` (the domain part is dropped)."""
    name = os.environ.get("COMPUTERNAME") if os_name() == "windows" else None
    name = name or socket.gethostname() or "unknown-host"
    return name.split(".")[0]


def validate_host_name(name: str) -> str:
    """Return ``name`` if it can be used as a host name on the share, else raise ValueError."""
    if not name or any(c in _FORBIDDEN_HOST_CHARS for c in name) or "." in name:
        raise ValueError(
            f"host name {name!r} is not allowed: use letters, digits, '-' and '_' (no dots, spaces or '~')"
        )
    return name


def ip_address() -> str:
    """The address other machines would see, found without sending a packet."""
    try:
        # connect() on a UDP socket only picks a route; nothing is sent.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            return str(s.getsockname()[0])
    except OSError:
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"


def user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # getpass raises various errors when no user is known
        return os.environ.get("USERNAME") or os.environ.get("USER") or "unknown"


def local_dirs() -> LocalDirs:
    """This machine's Envy folders from the environment: called once, by an entry point."""
    return LocalDirs.from_environment(os.environ, os_name())


def user_config_dir() -> Path:
    """Where the user's own ``config.yaml`` lives (``ENVY_CONFIG_DIR`` overrides it).

    Kept for ``load_config``'s default; the entry points pass the file they
    resolved once (``LocalDirs.user_config_file``).
    """
    return local_dirs().config
