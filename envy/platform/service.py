"""The OS's own start-up entry for an agent that runs without anyone signed in (overnight).

- Linux: a systemd unit, system-wide (``/etc/systemd/system``, ``User=`` the
  named account) or the user's own (``~/.config/systemd/user``; needs
  ``loginctl enable-linger`` to run while signed out).
- macOS: a launchd daemon (``/Library/LaunchDaemons``, ``UserName`` the named
  account) or the user's launch agent (``~/Library/LaunchAgents``, runs only
  while that user is signed in).
- Windows: a Task Scheduler task triggered at start-up under a named account
  (``schtasks /Create /XML``, password asked by schtasks), not stopped on
  battery, no time limit, restarted on failure. Written from the Task
  Scheduler schema documentation; it cannot run on the Linux CI machine.

Each entry runs ``python -m envy agent --share ... [--host ...] [--render]``
from the folder that holds the ``envy`` package, with the ``ENVY_*``
variables that were set at install time. The name carries the share key, so
one machine can have an entry per share.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

ENVY_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the envy package


class ServiceError(RuntimeError):
    """A service action failed: one line saying what and what to do."""


@dataclass(frozen=True)
class ServiceSpec:
    share: str
    key: str  # the share key (envy/local_state.py): one entry per share
    host: str | None = None
    account: str | None = None  # who the agent runs as; None: the installing user
    system: bool = True  # start at boot for everyone (needs admin) rather than the user's own entry
    render: bool = True  # join the render queue at start
    python: str = sys.executable
    workdir: str = str(ENVY_ROOT)
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"envy-agent-{self.key}"

    def command(self) -> list[str]:
        argv = [self.python, "-m", "envy", "agent", "--share", self.share]
        if self.host:
            argv += ["--host", self.host]
        if self.render:
            argv.append("--render")
        return argv


# -- Linux: systemd --------------------------------------------------------------------------------
def _systemd_quote(arg: str) -> str:
    """One ExecStart word: double-quoted with C escapes; ``%`` doubled (systemd specifiers)."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def systemd_unit(spec: ServiceSpec) -> str:
    lines = [
        "# Written by `envy service install`; remove with `envy service remove`.",
        "[Unit]",
        f"Description=Envy render farm agent for {spec.share}",
        "Wants=network-online.target remote-fs.target",
        "After=network-online.target remote-fs.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={' '.join(_systemd_quote(a) for a in spec.command())}",
        f"WorkingDirectory={_systemd_quote(spec.workdir)}",
    ]
    if spec.system and spec.account:
        lines.append(f"User={spec.account}")
    for key, value in sorted(spec.environment.items()):
        lines.append(f"Environment={_systemd_quote(f'{key}={value}')}")
    lines += [
        # SIGTERM is the agent's clean stop (frames given back); allow it the documented bound.
        "KillMode=mixed",
        "TimeoutStopSec=15",
        "Restart=on-failure",
        "RestartSec=10",
        "Nice=10",
        "",
        "[Install]",
        f"WantedBy={'multi-user.target' if spec.system else 'default.target'}",
        "",
    ]
    return "\n".join(lines)


def parse_exec_start(unit_text: str) -> list[str]:
    """The argv of a unit's ExecStart (for tests and ``status``)."""
    for line in unit_text.splitlines():
        if line.startswith("ExecStart="):
            return [w.replace("%%", "%") for w in shlex.split(line[len("ExecStart="):])]
    raise ServiceError("the unit has no ExecStart line")


def systemd_unit_dir(system: bool) -> Path:
    if system:
        return Path("/etc/systemd/system")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


# -- macOS: launchd --------------------------------------------------------------------------------
def launchd_plist(spec: ServiceSpec) -> bytes:
    plist: dict[str, object] = {
        "Label": f"org.envy.{spec.name}",
        "ProgramArguments": spec.command(),
        "WorkingDirectory": spec.workdir,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart after a crash, not after a clean quit()
        "ExitTimeOut": 15,  # launchd sends SIGTERM, then SIGKILL after this
        "ProcessType": "Background",
        "LowPriorityIO": True,
    }
    if spec.environment:
        plist["EnvironmentVariables"] = dict(spec.environment)
    if spec.system and spec.account:
        plist["UserName"] = spec.account
    return plistlib.dumps(plist)


def launchd_dir(system: bool) -> Path:
    return Path("/Library/LaunchDaemons") if system else Path.home() / "Library" / "LaunchAgents"


# -- Windows: Task Scheduler -----------------------------------------------------------------------
def schtasks_xml(spec: ServiceSpec) -> str:
    """A Task Scheduler 1.2 task: at start-up, under ``account``, whether or not anyone is signed in."""
    command, *args = spec.command()
    arguments = subprocess.list2cmdline(args)
    user = escape(spec.account or os.environ.get("USERNAME", ""))
    env_note = escape(", ".join(f"{k}={v}" for k, v in sorted(spec.environment.items())))
    description = f"Envy render farm agent for {escape(spec.share)} (written by envy service install)"
    description += " " + env_note if env_note else ""
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>{description}</Description>
  </RegistrationInfo>
  <Triggers>
    <BootTrigger><Enabled>true</Enabled><Delay>PT1M</Delay></BootTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>{user}</UserId>
      <LogonType>Password</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>true</RunOnlyIfNetworkAvailable>
    <IdleSettings><StopOnIdleEnd>false</StopOnIdleEnd><RestartOnIdle>false</RestartOnIdle></IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>7</Priority>
    <RestartOnFailure><Interval>PT1M</Interval><Count>10</Count></RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(command)}</Command>
      <Arguments>{escape(arguments)}</Arguments>
      <WorkingDirectory>{escape(spec.workdir)}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"""


def windows_task_name(spec: ServiceSpec) -> str:
    return f"\\Envy\\{spec.name}"


# -- actions ----------------------------------------------------------------------------------------
def entry_path(spec: ServiceSpec, platform: str | None = None, folder: Path | None = None) -> Path:
    """Where this OS keeps the entry (``folder`` overrides, for tests and staging)."""
    platform = platform or sys.platform
    if platform == "win32":
        return (folder or Path(os.environ.get("TEMP", "."))) / f"{spec.name}.xml"
    if platform == "darwin":
        return (folder or launchd_dir(spec.system)) / f"org.envy.{spec.name}.plist"
    return (folder or systemd_unit_dir(spec.system)) / f"{spec.name}.service"


def entry_text(spec: ServiceSpec, platform: str | None = None) -> bytes:
    platform = platform or sys.platform
    if platform == "win32":
        return schtasks_xml(spec).encode("utf-16")
    if platform == "darwin":
        return launchd_plist(spec)
    return systemd_unit(spec).encode("utf-8")


def install(spec: ServiceSpec, *, folder: Path | None = None, activate: bool = True) -> list[str]:
    """Write the entry and (``activate``) register it with the OS; return what was done, line by line."""
    path = entry_path(spec, folder=folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry_text(spec))
    except PermissionError:
        raise ServiceError(f"cannot write {path}: run as administrator, or use --user for your own entry") from None
    done = [f"wrote {path}"]
    if activate:
        done += _register(spec, path)
    return done


def remove(spec: ServiceSpec, *, folder: Path | None = None, activate: bool = True) -> list[str]:
    path = entry_path(spec, folder=folder)
    done = _unregister(spec, path) if activate else []
    try:
        path.unlink()
        done.append(f"removed {path}")
    except FileNotFoundError:
        done.append(f"no entry at {path}")
    except PermissionError:
        raise ServiceError(f"cannot remove {path}: run as administrator") from None
    return done


def status(spec: ServiceSpec, *, folder: Path | None = None) -> list[str]:
    path = entry_path(spec, folder=folder)
    lines = [f"entry: {path} ({'installed' if path.exists() else 'not installed'})"]
    if sys.platform.startswith("linux") and _systemd_running():
        lines.append("systemd: " + _run(_systemctl(spec) + ["is-active", spec.name]).strip())
    elif sys.platform == "darwin" and shutil.which("launchctl"):
        lines.append(
            "launchd: " + ("loaded" if _run(["launchctl", "list"]).count(f"org.envy.{spec.name}") else "not loaded")
        )
    elif sys.platform == "win32":
        lines.append(_run(["schtasks", "/Query", "/TN", windows_task_name(spec)]).strip() or "task not registered")
    return lines


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _systemctl(spec: ServiceSpec) -> list[str]:
    return ["systemctl"] if spec.system else ["systemctl", "--user"]


def _register(spec: ServiceSpec, path: Path) -> list[str]:
    if sys.platform == "win32":
        account = spec.account or os.environ.get("USERNAME", "")
        _check(
            ["schtasks", "/Create", "/TN", windows_task_name(spec), "/XML", str(path), "/RU", account, "/RP", "*", "/F"]
        )
        return [f"registered task {windows_task_name(spec)} (starts at boot as {account})"]
    if sys.platform == "darwin":
        domain = "system" if spec.system else f"gui/{os.getuid()}"
        _check(["launchctl", "bootstrap", domain, str(path)])
        return [f"loaded {path.name} into launchd ({domain})"]
    if not _systemd_running():
        enable = f"{' '.join(_systemctl(spec))} enable --now {spec.name}"
        return [f"systemd is not running here: the unit is written; enable it where systemd runs with `{enable}`"]
    _check(_systemctl(spec) + ["daemon-reload"])
    _check(_systemctl(spec) + ["enable", "--now", spec.name])
    return [f"enabled and started {spec.name}"]


def _unregister(spec: ServiceSpec, path: Path) -> list[str]:
    if sys.platform == "win32":
        _run(["schtasks", "/Delete", "/TN", windows_task_name(spec), "/F"])
        return [f"deleted task {windows_task_name(spec)}"]
    if sys.platform == "darwin":
        domain = "system" if spec.system else f"gui/{os.getuid()}"
        _run(["launchctl", "bootout", domain, str(path)])
        return [f"unloaded {path.name}"]
    if _systemd_running():
        _run(_systemctl(spec) + ["disable", "--now", spec.name])
        return [f"stopped and disabled {spec.name}"]
    return []


def _check(argv: list[str]) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise ServiceError(f"cannot run {argv[0]}: {exc}") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise ServiceError(f"{' '.join(argv[:3])} failed: {message[-1] if message else f'exit {proc.returncode}'}")


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return ""
