"""A real SMB share for tests: a loopback ``smbd`` mounted N times through ``smbnetfs``.

The second real network share beside tests/netshare.py's sshfs (ENGINEERING.md
§4): lab machines on Windows reach the farm over SMB, whose clients cache
attributes and compare names case-insensitively. One ``smbd`` started by the
test itself listens on 127.0.0.1 on a free unprivileged port and exports one
directory with ``case sensitive = no`` and a user login (its own passdb in the
test's temp folder). Each mount is its own ``smbnetfs`` FUSE process (with its
own SMB connection, its own negative cache and the kernel's FUSE caches), so
each mount plays one lab machine.

Nothing outside the temp folder is read or written: smbd gets ``--configfile``
with every state, lock, cache, pid and private directory inside the temp
folder, ``smbpasswd -c`` writes only that passdb, and smbnetfs runs with
``HOME`` set to the temp folder (libsmbclient reads ``$HOME/.smb/smb.conf``,
smbnetfs its ``-o config=``), never the system's or the user's samba config.

smbnetfs shows ``<mountpoint>/<host>/<share>``; the port travels in the host
name (``127.0.0.1:PORT``), so ``mounts[i]`` is ``mnt<i>/127.0.0.1:PORT/envy``,
the root of the share as that machine sees it. The kernel's CIFS client would
do as well, but is missing from many kernels (this one among them).

What these mounts do (Samba 4.17 + smbnetfs 0.6.3, measured by
benchmarks/freshness.py, written up in docs/share-layout.md): ``stat()`` and
``fstat()`` of an open file answer from the kernel's FUSE attribute cache for
up to 1 s; a read after open and a directory listing go to the server; names
are case-insensitive; rename onto an existing name replaces it.

smbd must run as root (it switches to the logged-in user per session), so the
share is unavailable to a non-root developer; ``require_smbshare()`` skips
then, and fails under CI=true like ``require_netshare()``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from netshare import (
    _LIVE,
    _LIVE_LOCK,
    NetShareError,
    _child_setup,
    _free_port,
    _read,
    _stop,
    in_mount_table,
    wait_for,
)

__all__ = ["SambaShare", "samba_share", "smbshare_available", "require_smbshare", "SHARE_NAME"]

SHARE_NAME = "envy"
START_TIMEOUT = 30.0  # smbd's start at load 10 on this 2-core machine took over 15 s
MOUNT_TIMEOUT = 15.0
UNMOUNT_TIMEOUT = 5.0


def _smbd_path() -> str | None:
    return shutil.which("smbd") or next(
        (p for p in ("/usr/sbin/smbd", "/usr/local/sbin/smbd") if os.access(p, os.X_OK)), None)


def smbshare_available() -> str | None:
    """``None`` if a loopback Samba share can be built here, else the reason why not."""
    if not sys.platform.startswith("linux"):
        return f"the Samba network-share tests need Linux (this is {sys.platform})"
    missing = []
    if _smbd_path() is None:
        missing.append("smbd (apt-get install samba)")
    if shutil.which("smbpasswd") is None:
        missing.append("smbpasswd (apt-get install samba-common-bin)")
    if shutil.which("smbnetfs") is None:
        missing.append("smbnetfs (apt-get install smbnetfs)")
    if shutil.which("fusermount") is None and shutil.which("fusermount3") is None:
        missing.append("fusermount (apt-get install fuse3)")
    if missing:
        return "missing " + ", ".join(missing)
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "no usable /dev/fuse"
    if os.geteuid() != 0:
        return "smbd must run as root to log users in"
    return None


def require_smbshare() -> None:
    """Skip the calling test if no Samba share can be built -- but fail under CI=true."""
    reason = smbshare_available()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(f"Samba network-share tests cannot run on CI: {reason}", pytrace=False)
    pytest.skip(f"Samba share unavailable: {reason}")


class SambaShare:
    """One loopback smbd exporting ``export`` as ``[envy]``, mounted N times with smbnetfs.

    Same surface as ``netshare.NetShare``: ``export``, ``mounts[i]`` (the share
    root as machine ``i`` sees it), ``unmount``/``remount``/``disconnect``.
    """

    kind = "samba"

    def __init__(self, tmp: Path, mounts: int = 2) -> None:
        if mounts < 1:
            raise ValueError("mounts must be >= 1")
        self.root = Path(tmp).resolve()
        self.export = self.root / "export"
        self.mount_points = [self.root / f"mnt{i}" for i in range(mounts)]
        self.port = 0
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.password = secrets.token_hex(12)
        self._etc = self.root / "samba"
        # smbd binds Unix sockets under its lock and ncalrpc folders, and a socket path has at
        # most 108 bytes: under pytest-xdist's longer temp paths smbd then never listened. Its
        # state folders are reached through a short link in /tmp to self._etc (removed at close).
        self._short: Path | None = None
        self._home = self.root / "smbclient-home"
        self._smbd: subprocess.Popen | None = None
        self._clients: list[subprocess.Popen | None] = [None] * mounts
        self._closed = False

    @property
    def mounts(self) -> list[Path]:
        return [mp / f"127.0.0.1:{self.port}" / SHARE_NAME for mp in self.mount_points]

    # -- public API -------------------------------------------------------------------

    def is_mounted(self, i: int) -> bool:
        return in_mount_table(self.mount_points[i])

    def unmount(self, i: int) -> None:
        """Make mount ``i`` disappear (the share root under it is then gone). Idempotent."""
        mp = self.mount_points[i]
        if in_mount_table(mp):
            res = self._fusermount("-u", mp)
            if res.returncode != 0 and in_mount_table(mp):
                self._fusermount("-uz", mp)
            wait_for(lambda: not in_mount_table(mp), UNMOUNT_TIMEOUT, f"{mp} to unmount")
        proc = self._clients[i]
        if proc is not None:
            try:
                proc.wait(timeout=UNMOUNT_TIMEOUT)
            except subprocess.TimeoutExpired:
                _stop(proc)
        self._clients[i] = None

    def remount(self, i: int) -> None:
        if self._closed:
            raise NetShareError("share is closed")
        if in_mount_table(self.mount_points[i]) or self._clients[i] is not None:
            self.unmount(i)
        self._mount(i)

    def disconnect(self, i: int) -> None:
        """SIGKILL mount ``i``'s smbnetfs: a dead mount (ENOTCONN) stays behind."""
        proc = self._clients[i]
        if proc is None or proc.poll() is not None:
            raise NetShareError(f"mount {i} has no running smbnetfs")
        proc.kill()
        proc.wait(timeout=UNMOUNT_TIMEOUT)

    @property
    def smbd_pid(self) -> int | None:
        return self._smbd.pid if self._smbd is not None and self._smbd.poll() is None else None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> SambaShare:
        with _LIVE_LOCK:
            _LIVE.add(self)  # type: ignore[arg-type]  # same close() contract as NetShare
        try:
            for folder in (self.export, self._etc, self._home / ".smb", *self.mount_points):
                folder.mkdir(parents=True, exist_ok=True)
            for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "log"):
                (self._etc / sub).mkdir(exist_ok=True)
            self._short = Path(tempfile.mkdtemp(prefix="esmb", dir="/tmp"))
            (self._short / "e").symlink_to(self._etc, target_is_directory=True)
            self._start_smbd()
            self._write_client_config()
            for i in range(len(self.mount_points)):
                self._mount(i)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for i in range(len(self.mount_points)):
            try:
                self.unmount(i)
            except Exception as exc:  # noqa: BLE001 - try every mount, report at the end
                errors.append(f"mount {i}: {exc}")
                with contextlib.suppress(Exception):
                    self._fusermount("-uz", self.mount_points[i])
                _stop(self._clients[i])
                self._clients[i] = None
        _stop(self._smbd)
        self._smbd = None
        if self._short is not None:
            with contextlib.suppress(OSError):
                (self._short / "e").unlink()
                self._short.rmdir()
        with _LIVE_LOCK:
            _LIVE.discard(self)  # type: ignore[arg-type]
        if errors:
            raise NetShareError("teardown problems: " + "; ".join(errors))

    def __enter__(self) -> SambaShare:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------

    @property
    def smb_conf(self) -> Path:
        return self._etc / "smb.conf"

    @property
    def smbd_log(self) -> Path:
        return self._etc / "log" / "smbd.out"

    def client_log(self, i: int) -> Path:
        return self._etc / "log" / f"smbnetfs{i}.log"

    def _write_server_config(self) -> None:
        d = self._short / "e" if self._short is not None else self._etc  # see __init__
        self.smb_conf.write_text("\n".join([
            "[global]",
            "server role = standalone server",
            "workgroup = ENVYTEST",
            "netbios name = ENVYTEST",
            f"smb ports = {self.port}",
            "interfaces = 127.0.0.1",
            "bind interfaces only = yes",
            "disable netbios = yes",
            f"private dir = {d / 'private'}",
            f"lock directory = {d / 'lock'}",
            f"state directory = {d / 'state'}",
            f"cache directory = {d / 'cache'}",
            f"pid directory = {d / 'pid'}",
            f"ncalrpc dir = {d / 'ncalrpc'}",
            f"passdb backend = tdbsam:{self._etc / 'private' / 'passdb.tdb'}",
            f"log file = {self._etc / 'log' / 'smbd.log'}",
            "log level = 1",
            "load printers = no",
            "printing = bsd",
            "printcap name = /dev/null",
            "disable spoolss = yes",
            "map to guest = never",
            "server min protocol = SMB2",
            "",
            f"[{SHARE_NAME}]",
            f"path = {self.export}",
            "read only = no",
            # As a Windows file server: names compare case-insensitively, case is kept.
            "case sensitive = no",
            "preserve case = yes",
            f"valid users = {self.user}",
            "",
        ]))

    def _start_smbd(self) -> None:
        smbd = _smbd_path()
        if smbd is None:
            raise NetShareError("smbd not found")
        last = ""
        for _attempt in range(3):  # the free port can be taken between bind and smbd
            self.port = _free_port()
            self._write_server_config()
            subprocess.run(["smbpasswd", "-c", str(self.smb_conf), "-s", "-a", self.user],
                           input=f"{self.password}\n{self.password}\n", text=True,
                           capture_output=True, check=True, timeout=30)
            log = open(self.smbd_log, "ab")
            try:
                self._smbd = subprocess.Popen(
                    [smbd, "--foreground", "--no-process-group", "--debug-stdout",
                     f"--configfile={self.smb_conf}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    # smbd signals its whole process group when it stops: give it its own.
                    start_new_session=True, preexec_fn=_child_setup(), close_fds=True)
            finally:
                log.close()
            try:
                wait_for(self._smbd_ready, START_TIMEOUT, f"smbd on 127.0.0.1:{self.port}")
                return
            except (TimeoutError, NetShareError):
                last = _read(self.smbd_log) + _read(self._etc / "log" / "smbd.log")[-2000:]
                _stop(self._smbd)
                self._smbd = None
        raise NetShareError(f"smbd did not start; log:\n{last}")

    def _smbd_ready(self) -> bool:
        if self._smbd is None or self._smbd.poll() is not None:
            raise NetShareError(f"smbd exited: {_read(self.smbd_log)}")
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _write_client_config(self) -> None:
        smb = self._home / ".smb"
        (smb / "smb.conf").write_text(
            "[global]\nclient min protocol = SMB2\nworkgroup = ENVYTEST\ndisable netbios = yes\n")
        conf = smb / "smbnetfs.conf"
        conf.write_text("\n".join([
            f'auth "127.0.0.1:{self.port}" "{self.user}" "{self.password}"',
            f'auth "{self.user}" "{self.password}"',
            'smb_query_browsers "false"',
            'use_libsecret "false"',
            "",
        ]))
        conf.chmod(0o600)
        for name in ("smbnetfs.auth", "smbnetfs.host"):  # included by name; keep them empty
            (smb / name).write_text("")

    def _mount(self, i: int) -> None:
        mp = self.mount_points[i]
        if in_mount_table(mp):
            raise NetShareError(f"{mp} is already mounted")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMB", "KRB5"))}
        env["HOME"] = str(self._home)
        log_path = self.client_log(i)
        log = open(log_path, "ab")
        try:
            proc = subprocess.Popen(
                ["smbnetfs", str(mp), "-f", "-o", f"config={self._home / '.smb' / 'smbnetfs.conf'}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                preexec_fn=_child_setup(), close_fds=True)
        finally:
            log.close()
        self._clients[i] = proc
        root = self.mounts[i]

        def live() -> bool:
            if proc.poll() is not None:
                raise NetShareError(f"smbnetfs for {mp} exited with {proc.returncode}")
            return in_mount_table(mp) and root.is_dir()

        try:
            wait_for(live, MOUNT_TIMEOUT, f"smbnetfs mount {root}", interval=0.1)
        except TimeoutError as exc:
            _stop(proc)
            self._clients[i] = None
            with contextlib.suppress(Exception):
                self._fusermount("-uz", mp)
            raise NetShareError(
                f"mount {i} ({root}) did not go live: {exc}\nsmbnetfs log:\n{_read(log_path)}\n"
                f"smbd log:\n{_read(self._etc / 'log' / 'smbd.log')}") from exc

    def _fusermount(self, flag: str, mp: Path) -> subprocess.CompletedProcess:
        tool = shutil.which("fusermount") or shutil.which("fusermount3") or "fusermount"
        return subprocess.run([tool, flag, str(mp)], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=UNMOUNT_TIMEOUT * 2)

    def __repr__(self) -> str:
        state = ["up" if self.is_mounted(i) else "down" for i in range(len(self.mount_points))]
        return f"<SambaShare {self.export} port={self.port} mounts={state}>"


@contextmanager
def samba_share(tmp: Path, mounts: int = 2) -> Iterator[SambaShare]:
    """Build a Samba share under ``tmp``, yield it, and always tear it down."""
    share = SambaShare(Path(tmp), mounts=mounts)
    share.start()
    try:
        yield share
    finally:
        share.close()


@pytest.fixture
def smbshare(tmp_path: Path) -> Iterator[Callable[..., SambaShare]]:
    """Factory fixture: ``smbshare(mounts=2) -> SambaShare``; skips (fails under CI) when unavailable."""
    require_smbshare()
    stack = contextlib.ExitStack()
    count = 0

    def make(mounts: int = 2) -> SambaShare:
        nonlocal count
        root = tmp_path / f"smbshare{count}"
        count += 1
        return stack.enter_context(samba_share(root, mounts=mounts))

    with stack:
        yield make
