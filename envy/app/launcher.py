"""Write the launcher zipapp and the start-up scripts into ``<share>/app`` (no admin rights needed)."""

from __future__ import annotations

import os
import tempfile
import zipapp
from pathlib import Path

from envy.app.layout import AppLayout
from envy.share.atomic import atomic_write
from envy.share.fs import ShareFS
from envy.share.layout import make_dirs_within

# The .sh and .command scripts try each Python they know of and use the first that is 3.10+.
# hython is run without -I: it is not a plain python and sets up its own paths.
_POSIX_SCRIPT = """#!/bin/sh
# Start the Envy agent from the share copy. Needs no admin rights: only a Python 3.10+
# (python.org, the OS's python3, or Houdini's hython). Extra arguments go to `envy agent`.
HERE="$(cd "$(dirname "$0")" && pwd)"
ok() {{ "$1" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; }}
for PY in python3 python{extra_pythons}; do
  if command -v "$PY" >/dev/null 2>&1 && ok "$PY"; then exec "$PY" -I "$HERE/envy.pyz" agent "$@"; fi
done
for PY in {hythons}; do
  if [ -x "$PY" ]; then exec "$PY" "$HERE/envy.pyz" agent "$@"; fi
done
echo "Envy: no Python 3.10 or newer found. Install one from python.org (no admin rights needed) or Houdini." >&2
exit 1
"""

_MAC_PYTHONS = " /Library/Frameworks/Python.framework/Versions/3.1*/bin/python3"
_MAC_HYTHONS = (
    "/Applications/Houdini/Current/Frameworks/Houdini.framework/Versions/Current/Resources/bin/hython "
    "/Applications/Houdini/Houdini*/Frameworks/Houdini.framework/Versions/Current/Resources/bin/hython"
)
_LINUX_HYTHONS = "/opt/hfs*/bin/hython"

# ruff: noqa: E501  (the batch file's lines are data)
_BAT_SCRIPT = r"""@echo off
rem Start the Envy agent from the share copy. Needs no admin rights: only a Python 3.10+
rem (python.org's installer "for me only" gives py.exe) or Houdini's hython. Extra arguments go to `envy agent`.
setlocal
set "HERE=%~dp0"
where py >nul 2>nul && py -3 -c "import sys; sys.exit(sys.version_info < (3, 10))" >nul 2>nul && (
  py -3 -I "%HERE%envy.pyz" agent %*
  exit /b %ERRORLEVEL%
)
where python >nul 2>nul && python -c "import sys; sys.exit(sys.version_info < (3, 10))" >nul 2>nul && (
  python -I "%HERE%envy.pyz" agent %*
  exit /b %ERRORLEVEL%
)
for /d %%H in ("%ProgramFiles%\Side Effects Software\Houdini*") do if exist "%%~H\bin\hython.exe" set "HYTHON=%%~H\bin\hython.exe"
if defined HYTHON (
  "%HYTHON%" "%HERE%envy.pyz" agent %*
  exit /b %ERRORLEVEL%
)
echo Envy: no Python 3.10 or newer found. Install one from python.org (no admin rights needed) or Houdini.
pause
exit /b 1
"""


def start_scripts() -> dict[str, str]:
    return {
        ".sh": _POSIX_SCRIPT.format(extra_pythons="", hythons=_LINUX_HYTHONS),
        ".command": _POSIX_SCRIPT.format(extra_pythons=_MAC_PYTHONS, hythons=_MAC_HYTHONS),
        ".bat": _BAT_SCRIPT.replace("\n", "\r\n"),
    }


def install_launcher(share: Path, fs: ShareFS) -> list[Path]:
    """Write app/envy.pyz (the launcher) and the start-up scripts; returns what was written."""
    app = AppLayout(share)
    make_dirs_within(share, "app")
    with tempfile.TemporaryDirectory(prefix="envy-launcher-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        main = Path(__file__).with_name("launcher_main.py").read_text(encoding="utf-8")
        (src / "__main__.py").write_text(main, encoding="utf-8")
        built = Path(tmp) / "envy.pyz"
        zipapp.create_archive(src, built, interpreter="/usr/bin/env python3")
        atomic_write(app.launcher, built.read_bytes(), fs)
    written = [app.launcher]
    for suffix, text in start_scripts().items():
        path = app.start_script(suffix)
        atomic_write(path, text.encode("utf-8"), fs)
        if suffix != ".bat" and os.name != "nt":
            os.chmod(path, 0o755)
        written.append(path)
    return written
