"""A real network share for tests: sshfs mounts of a loopback sshd.

ENGINEERING.md §4: the network-share case is a real FUSE mount -- one ``sshd``
listening on 127.0.0.1 exports one directory, and that directory is mounted N
times with ``sshfs``.  Each mount is its own ``sshfs`` process with its own
SFTP connection and its own caches (sshfs's directory/attribute cache plus the
kernel's FUSE entry/attr caches), so each mount plays one lab machine.

Everything lives in the test's temp folder: the sshd host key, the client key,
``authorized_keys``, ``sshd_config``, the pid file and the logs.  The client is
run with ``-F /dev/null``, ``IdentitiesOnly=yes``, ``UserKnownHostsFile=/dev/null``
and without ``SSH_AUTH_SOCK``, so a test never reads or writes ``~/.ssh`` or
talks to the developer's agent.

Use it either as a context manager::

    from netshare import net_share, require_netshare

    def test_x(tmp_path):
        require_netshare()
        with net_share(tmp_path, mounts=2) as share:
            (share.mounts[0] / "a").write_text("hi")

or through the ``netshare`` fixture (a factory; import it into conftest.py or
the test module so pytest registers it)::

    from netshare import netshare  # noqa: F401  (fixture)

    def test_y(netshare):
        share = netshare(mounts=3, cache=False)

When the tools are missing the fixture / ``require_netshare()`` skip on a
developer machine but *fail* when ``CI=true``: CI must never silently skip the
network-share tests.

What these mounts do (measured with OpenSSH 9.2 + sshfs 3.7.3; pinned by
tests/test_netshare_fixture.py):

* rename(2) is decided by the server.  OpenSSH advertises
  ``posix-rename@openssh.com`` and sshfs then uses it, so renaming onto an
  existing name *silently overwrites* (atomic, like local POSIX rename) and
  ``-o workaround=rename`` is ignored (sshfs turns it off when the extension is
  present).  With ``posix_rename=False`` (server refuses the extension, as
  older/other SFTP servers may) sshfs sends plain SSH_FXP_RENAME, which
  OpenSSH implements as link()+unlink(): renaming onto an existing file fails
  with EPERM and leaves both files; adding ``workaround=rename`` makes it
  overwrite again by moving the target aside first (not atomic).  link(2)
  onto an existing name and O_CREAT|O_EXCL always fail with EEXIST.
* Two mounts renaming the same source: exactly one wins, the other gets
  ENOENT -- even when its cache still lists the source.
* With ``cache=True`` a mount keeps a *positive* cache entry for up to
  ``dcache_timeout`` (20 s): after another mount deletes or renames a file,
  ``exists()``/``stat()``/``listdir()`` through this mount keep showing it.
  Names it never looked up are found at once (no negative caching).  File
  contents are re-read on open.  ``cache=False`` shows changes at once.
* ``unmount(i)`` leaves the empty local mount-point directory: writes to
  ``mounts[i]/...`` then land on local disk (and are hidden again by
  ``remount``).  Files held open across a (lazy) unmount, and every path under
  a ``disconnect(i)``-ed mount, fail with ENOTCONN.

Linux only (sshfs + FUSE).  Must run as root or as a user allowed to mount
FUSE (``fusermount3`` setuid); as root sshd needs ``/run/sshd``, which is
created when missing.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from envy.waiting import wait_for  # the one wait of Envy (re-exported for the tests)

__all__ = [
    "NetShare",
    "NetShareError",
    "net_share",
    "netshare_available",
    "require_netshare",
    "netshare",
    "in_mount_table",
    "wait_for",
]

#: Seconds to wait for sshd to accept connections / a mount to go live / go away.
START_TIMEOUT = 10.0
MOUNT_TIMEOUT = 10.0
UNMOUNT_TIMEOUT = 5.0
#: Seconds between tries while waiting for sshd or a mount (each try is cheap).
POLL = 0.02


class NetShareError(RuntimeError):
    """The share could not be set up or torn down; the message carries the logs."""


# --------------------------------------------------------------------------- helpers


def _sshd_path() -> str | None:
    found = shutil.which("sshd")
    if found:
        return found
    for cand in ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"):
        if os.access(cand, os.X_OK):
            return cand
    return None


def _fusermount_path() -> str | None:
    # fuse3's helper is fusermount3; sshfs 3.x needs it.  Fall back to fuse2's.
    return shutil.which("fusermount3") or shutil.which("fusermount")


def netshare_available() -> str | None:
    """``None`` if a loopback sshfs share can be built here, else the reason why not."""
    if not sys.platform.startswith("linux"):
        return f"sshfs network-share tests need Linux (this is {sys.platform})"
    missing = []
    if _sshd_path() is None:
        missing.append("sshd (apt-get install openssh-server)")
    for tool, pkg in (("sshfs", "sshfs"), ("ssh", "openssh-client"),
                      ("ssh-keygen", "openssh-client")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {pkg})")
    if _fusermount_path() is None:
        missing.append("fusermount3/fusermount (apt-get install fuse3)")
    if missing:
        return "missing " + ", ".join(missing)
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse (modprobe fuse, or run the container with --device /dev/fuse)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not readable+writable by this user"
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        # We can create it ourselves (we're root); only fail if that's impossible.
        try:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        except OSError as exc:
            return f"cannot create sshd privilege-separation dir /run/sshd: {exc}"
    return None


def require_netshare() -> None:
    """Skip the calling test if no network share can be built -- but fail under CI=true."""
    reason = netshare_available()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(f"network-share tests cannot run on CI: {reason}", pytrace=False)
    pytest.skip(f"network share unavailable: {reason}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_PR_SET_PDEATHSIG = 1


def _child_setup() -> Callable[[], None] | None:
    """preexec_fn that kills the child (SIGTERM) if the test process dies.

    PR_SET_PDEATHSIG fires when the creating *thread* exits, so only use it
    from the main thread; otherwise the atexit hook and context manager clean up.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # parent already gone
            os.kill(os.getpid(), signal.SIGTERM)

    return setup


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def in_mount_table(path: Path | str) -> bool:
    """True if ``path`` is a mount point per /proc/self/mountinfo.

    Unlike ``os.path.ismount`` this also sees a dead FUSE mount (whose lstat
    fails with ENOTCONN), which teardown must still unmount.
    """
    target = os.path.abspath(path)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and _unescape_mountinfo(fields[4]) == target:
                    return True
    except OSError:
        return os.path.ismount(target)
    return False


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (Linux /proc scan)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ..." -- comm may contain spaces/parens.
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) > 1 and int(rest[1]) == pid:
            kids.append(int(entry))
    return kids


def _read(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


def _stop(proc: subprocess.Popen | None, timeout: float = 3.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


# Every live share, so an interpreter exit without teardown still unmounts.
_LIVE: set[NetShare] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _cleanup_all() -> None:
    with _LIVE_LOCK:
        shares = list(_LIVE)
    for share in shares:
        with contextlib.suppress(Exception):
            share.close()


# --------------------------------------------------------------------------- the share


class NetShare:
    """One loopback sshd exporting one directory, mounted N times with sshfs.

    ``export`` is the real ("server side") directory; ``mounts[i]`` is the mount
    point of machine ``i``.  Each mount is a separate ``sshfs -f`` process with
    its own connection and caches.
    """

    def __init__(self, tmp: Path, mounts: int = 2, cache: bool = True,
                 cache_timeout: float | None = None,
                 extra_options: tuple[str, ...] = (),
                 posix_rename: bool = True) -> None:
        if mounts < 1:
            raise ValueError("mounts must be >= 1")
        self.root = Path(tmp).resolve()
        if any(c in str(self.root) for c in ',"%\n'):
            # ',' splits sshfs -o lists; '"' and '%' (tokens) break sshd_config.
            raise ValueError(f"unsupported characters in share folder {self.root}")
        self.export: Path = self.root / "export"
        self.mounts: list[Path] = [self.root / f"mnt{i}" for i in range(mounts)]
        self.cache = cache
        self.cache_timeout = cache_timeout
        self.extra_options = tuple(extra_options)
        self.posix_rename = posix_rename
        self.port = 0
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self._etc = self.root / "sshd"
        self._sshd: subprocess.Popen | None = None
        self._sshfs: list[subprocess.Popen | None] = [None] * mounts
        self._fusermount = _fusermount_path() or "fusermount"
        self._closed = False

    # -- public API -------------------------------------------------------------------

    def is_mounted(self, i: int) -> bool:
        return os.path.ismount(self.mounts[i])

    def unmount(self, i: int) -> None:
        """Make mount ``i`` disappear (``fusermount -u``; lazy ``-uz`` if busy).

        Idempotent.  Simulates the share vanishing under one machine: paths
        under ``mounts[i]`` then refer to the empty local mount-point directory.
        """
        mp = self.mounts[i]
        proc = self._sshfs[i]
        grace = UNMOUNT_TIMEOUT
        if in_mount_table(mp):
            res = self._fusermount_run("-u", mp)
            if res.returncode != 0 and in_mount_table(mp):
                # Busy (open files / cwd inside): detach lazily.  sshfs would
                # linger until the last open file closes; we stop it below, so
                # those open files then fail with ENOTCONN, as on a lost share.
                grace = 0.5
                res2 = self._fusermount_run("-uz", mp)
                if res2.returncode != 0 and in_mount_table(mp):
                    raise NetShareError(
                        f"cannot unmount {mp}: {res.stderr.strip()} / {res2.stderr.strip()}")
            wait_for(lambda: not in_mount_table(mp), UNMOUNT_TIMEOUT, f"{mp} to unmount", POLL, retry_on=(OSError,))
        # sshfs -f exits once its mount is gone; make sure it did.
        if proc is not None:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _stop(proc)
        self._sshfs[i] = None

    def remount(self, i: int) -> None:
        """Mount ``i`` again (unmounting first if it is still mounted: fresh caches)."""
        if self._closed:
            raise NetShareError("share is closed")
        if in_mount_table(self.mounts[i]) or self._sshfs[i] is not None:
            self.unmount(i)
        self._mount(i)

    def disconnect(self, i: int) -> None:
        """Kill mount ``i``'s sshfs process (SIGKILL), leaving a dead mount behind.

        Paths under ``mounts[i]`` then fail with ENOTCONN ("Transport endpoint is
        not connected") -- the "server went away mid-job" case.  ``unmount(i)``,
        ``remount(i)`` and teardown clean the dead mount up.
        """
        proc = self._sshfs[i]
        if proc is None or proc.poll() is not None:
            raise NetShareError(f"mount {i} has no running sshfs")
        proc.kill()
        proc.wait(timeout=UNMOUNT_TIMEOUT)

    def sshfs_pid(self, i: int) -> int | None:
        proc = self._sshfs[i]
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def sshd_pid(self) -> int | None:
        return self._sshd.pid if self._sshd is not None and self._sshd.poll() is None else None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> NetShare:
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self.export.mkdir(parents=True, exist_ok=True)
            for mp in self.mounts:
                mp.mkdir(parents=True, exist_ok=True)
            self._etc.mkdir(parents=True, exist_ok=True)
            self._make_keys()
            self._start_sshd()
            for i in range(len(self.mounts)):
                self._mount(i)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Unmount everything and stop sshd.  Safe to call repeatedly; never raises
        before having tried every mount."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for i in range(len(self.mounts)):
            try:
                self.unmount(i)
            except Exception as exc:  # noqa: BLE001 - keep going, report at the end
                errors.append(f"mount {i}: {exc}")
                with contextlib.suppress(Exception):
                    self._fusermount_run("-uz", self.mounts[i])
                _stop(self._sshfs[i])
                self._sshfs[i] = None
        if self._sshd is not None:
            # Let sshd's per-connection children see their clients go and exit
            # while the listener is still there to reap them.
            sshd_pid = self._sshd.pid
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not _children(sshd_pid), 2.0, "sshd sessions to end", POLL, retry_on=(OSError,))
        _stop(self._sshd)
        self._sshd = None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if errors:
            raise NetShareError("teardown problems: " + "; ".join(errors))

    def __enter__(self) -> NetShare:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------

    @property
    def host_key(self) -> Path:
        return self._etc / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self._etc / "id_ed25519"

    @property
    def sshd_log(self) -> Path:
        return self._etc / "sshd.log"

    def sshfs_log(self, i: int) -> Path:
        return self._etc / f"sshfs{i}.log"

    def _make_keys(self) -> None:
        for key, comment in ((self.host_key, "envy-test-host"), (self.client_key, "envy-test-client")):
            if not key.exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
                    check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        auth = self._etc / "authorized_keys"
        auth.write_text(Path(str(self.client_key) + ".pub").read_text())
        auth.chmod(0o600)

    def _write_sshd_config(self) -> Path:
        cfg = self._etc / "sshd_config"
        cfg.write_text("\n".join([
            f"ListenAddress 127.0.0.1:{self.port}",
            f'HostKey "{self.host_key}"',
            f'PidFile "{self._etc / "sshd.pid"}"',
            f'AuthorizedKeysFile "{self._etc / "authorized_keys"}"',
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "UseDNS no",
            "PrintMotd no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "MaxStartups 100",
            # Without posix-rename the server falls back to plain SFTP rename
            # (link+unlink: never overwrites) -- like older/non-OpenSSH servers.
            "Subsystem sftp internal-sftp" + ("" if self.posix_rename else " -P posix-rename"),
            "LogLevel ERROR",
            "",
        ]))
        return cfg

    def _start_sshd(self) -> None:
        sshd = _sshd_path()
        if sshd is None:
            raise NetShareError("sshd not found")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        last_error = ""
        for _attempt in range(3):  # the free port can be stolen between bind and sshd
            self.port = _free_port()
            cfg = self._write_sshd_config()
            log = open(self.sshd_log, "ab")
            try:
                self._sshd = subprocess.Popen(
                    [sshd, "-D", "-e", "-f", str(cfg)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=_child_setup(), close_fds=True)
            finally:
                log.close()
            try:
                wait_for(self._sshd_ready, START_TIMEOUT, f"sshd on 127.0.0.1:{self.port}", POLL, retry_on=(OSError,))
                return
            except (TimeoutError, NetShareError):  # e.g. port taken meanwhile: retry
                last_error = _read(self.sshd_log)
                _stop(self._sshd)
                self._sshd = None
        raise NetShareError(f"sshd did not start; log:\n{last_error}")

    def _sshd_ready(self) -> bool:
        if self._sshd is None or self._sshd.poll() is not None:
            raise NetShareError(f"sshd exited: {_read(self.sshd_log)}")  # -> retried/timeout
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                if not s.recv(64).startswith(b"SSH-"):
                    return False
                # Answer with a banner so sshd doesn't log the probe as an error.
                s.sendall(b"SSH-2.0-envy-readiness-probe\r\n")
                return True
        except OSError:
            return False

    def _sshfs_options(self) -> list[str]:
        opts = [
            f"IdentityFile={self.client_key}",
            "IdentitiesOnly=yes",
            "BatchMode=yes",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "LogLevel=ERROR",
            f"port={self.port}",
            "ConnectTimeout=5",
            "reconnect",
            "ServerAliveInterval=2",
            "ServerAliveCountMax=3",
        ]
        if self.cache:
            # sshfs's own dir/attr cache (dir_cache=yes, 20 s default) and the
            # kernel's 1 s entry/attr caches stay on: one set per mount.
            if self.cache_timeout is not None:
                opts.append(f"dcache_timeout={self.cache_timeout:g}")
        else:
            opts += ["dir_cache=no", "attr_timeout=0", "entry_timeout=0", "negative_timeout=0"]
        opts += list(self.extra_options)
        return opts

    def _mount(self, i: int) -> None:
        mp = self.mounts[i]
        if in_mount_table(mp):
            raise NetShareError(f"{mp} is already mounted")
        env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
        cmd = ["sshfs", "-f", "-F", "/dev/null",
               f"{self.user}@127.0.0.1:{self.export}", str(mp),
               "-o", ",".join(self._sshfs_options())]
        log_path = self.sshfs_log(i)
        log = open(log_path, "ab")
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env,
                                    preexec_fn=_child_setup(), close_fds=True)
        finally:
            log.close()
        self._sshfs[i] = proc

        def live() -> bool:
            if proc.poll() is not None:
                raise NetShareError(f"sshfs for {mp} exited with {proc.returncode}")
            return os.path.ismount(mp)

        try:
            wait_for(live, MOUNT_TIMEOUT, f"sshfs mount {mp}", POLL, retry_on=(OSError,))
        except TimeoutError as exc:
            _stop(proc)
            self._sshfs[i] = None
            with contextlib.suppress(Exception):
                self._fusermount_run("-uz", mp)
            raise NetShareError(
                f"mount {i} ({mp}) did not go live: {exc}; cause: {exc.__cause__}\n"
                f"sshfs log:\n{_read(log_path)}\nsshd log:\n{_read(self.sshd_log)}") from exc

    def _fusermount_run(self, flag: str, mp: Path) -> subprocess.CompletedProcess:
        return subprocess.run([self._fusermount, flag, str(mp)], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=UNMOUNT_TIMEOUT * 2)

    def __repr__(self) -> str:
        state = ["up" if self.is_mounted(i) else "down" for i in range(len(self.mounts))]
        return f"<NetShare {self.export} port={self.port} mounts={state}>"


@contextmanager
def net_share(tmp: Path, mounts: int = 2, cache: bool = True, *,
              cache_timeout: float | None = None,
              extra_options: tuple[str, ...] = (),
              posix_rename: bool = True) -> Iterator[NetShare]:
    """Build a share under ``tmp``, yield it, and always tear it down.

    ``cache=True`` keeps sshfs's default caching (directory/attribute cache with
    a 20 s timeout, overridable with ``cache_timeout``; kernel entry/attr 1 s).
    ``cache=False`` turns all of it off (``dir_cache=no`` and zero kernel timeouts).
    ``extra_options`` are appended to every mount's ``-o`` list
    (e.g. ``("workaround=rename",)``).  ``posix_rename=False`` makes the server
    refuse the ``posix-rename@openssh.com`` extension, so sshfs falls back to
    plain SFTP rename, which fails (EPERM) when the destination exists.
    """
    share = NetShare(Path(tmp), mounts=mounts, cache=cache, cache_timeout=cache_timeout,
                     extra_options=extra_options, posix_rename=posix_rename)
    share.start()
    try:
        yield share
    finally:
        share.close()


@pytest.fixture
def netshare(tmp_path: Path) -> Iterator[Callable[..., NetShare]]:
    """Factory fixture: ``netshare(mounts=2, cache=True, **kw) -> NetShare``.

    Skips when unavailable on a developer machine, fails under CI=true.  Every
    share built is torn down after the test, pass or fail.
    """
    require_netshare()
    stack = contextlib.ExitStack()
    count = 0

    def make(mounts: int = 2, cache: bool = True, **kw: object) -> NetShare:
        nonlocal count
        root = tmp_path / f"netshare{count}"
        count += 1
        return stack.enter_context(net_share(root, mounts=mounts, cache=cache, **kw))

    with stack:
        yield make
