"""Facts about this machine: its name, address, user and local folders."""

from __future__ import annotations

import getpass
import os
import socket
import sys
from collections.abc import Mapping
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


def account_name() -> str:
    """The OS account this process runs as, never $USER or $USERNAME (Must-hold 10)."""
    if os.name == "nt":
        # On Windows the token's account is what GetUserNameW answers; getpass reads env vars first,
        # so ask the OS directly.
        try:
            import ctypes

            size = ctypes.c_ulong(257)
            buf = ctypes.create_unicode_buffer(size.value)
            if ctypes.windll.advapi32.GetUserNameW(buf, ctypes.byref(size)):  # type: ignore[attr-defined]
                return buf.value
        except (AttributeError, OSError):
            pass
        return getpass.getuser()
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def is_admin() -> bool:
    """Root on POSIX; an elevated (administrator) process on Windows."""
    if os.name == "nt":
        try:
            import ctypes

            return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            return False
    return os.geteuid() == 0


def user_name(env: Mapping[str, str] | None = None) -> str:
    """Whom this process acts for: its OS account, never what $USER says (issue 9 Must-hold 10).

    The user's folder, seats and jobs follow this name, so a student who sets
    USER=classmate would take the classmate's seats. Only an administrator,
    who can write every file those decide anyway, may act for another user
    by naming them in USER (LOGNAME, USERNAME): a service started for a student.
    """
    account = account_name()
    if not is_admin():
        return account
    env = os.environ if env is None else env
    return env.get("USER") or env.get("LOGNAME") or env.get("USERNAME") or account


def local_dirs() -> LocalDirs:
    """This machine's Envy folders from the environment: called once, by an entry point."""
    return LocalDirs.from_environment(os.environ, os_name())


def user_config_dir() -> Path:
    """Where the user's own ``config.yaml`` lives (``ENVY_CONFIG_DIR`` overrides it).

    Kept for ``load_config``'s default; the entry points pass the file they
    resolved once (``LocalDirs.user_config_file``).
    """
    return local_dirs().config
