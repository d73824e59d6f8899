"""`envy service`: the start-at-boot entries (envy/platform/service.py).

systemd is not running on the CI machine, so the Linux unit is tested for
real by what is written and by running the command its ExecStart names, in
its WorkingDirectory with its Environment: an agent starts and heartbeats.
The launchd plist and the Task Scheduler XML cannot be registered here;
they are parsed and checked for what the OS needs.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from envy.platform.dirs import share_key
from envy.platform.service import (
    ServiceSpec,
    entry_path,
    launchd_plist,
    parse_exec_start,
    schtasks_xml,
    systemd_unit,
)
from farm import Farm, wait_for

ROOT = Path(__file__).resolve().parents[1]


def _spec(share: Path, **kw: object) -> ServiceSpec:
    return ServiceSpec(share=str(share), key=share_key(share), **kw)  # type: ignore[arg-type]


def _unit_values(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


def test_the_installed_unit_starts_an_agent_that_heartbeats(farm: Farm, tmp_path: Path) -> None:
    units = tmp_path / "units"
    env = {**farm.env}
    proc = subprocess.run([sys.executable, "-m", "envy", "service", "install", "--share", str(farm.share),
                           "--host", "night1", "--dir", str(units)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    unit_file = units / f"envy-agent-{share_key(farm.share)}.service"
    assert f"wrote {unit_file}" in proc.stdout
    text = unit_file.read_text()
    argv = parse_exec_start(text)
    assert argv[1:] == ["-m", "envy", "agent", "--share", str(farm.share), "--host", "night1", "--render"]
    assert "KillMode=mixed" in text and "WantedBy=multi-user.target" in text
    workdir = shlex.split(_unit_values(text, "WorkingDirectory")[0])[0]
    unit_env = dict(shlex.split(v)[0].split("=", 1) for v in _unit_values(text, "Environment"))
    assert unit_env["ENVY_STATE_DIR"] == farm.env["ENVY_STATE_DIR"]
    # Run what systemd would run: its argv, folder and environment (plus PATH, which systemd sets too).
    service_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "USER": farm.user, **unit_env}
    agent = subprocess.Popen(argv, cwd=workdir, env=service_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        status = wait_for(lambda: (farm.status("night1") or {}).get("pid") == agent.pid and farm.status("night1"),
                          30, "the agent from the unit to heartbeat")
        assert status["state"] in ("idle", "rendering")  # type: ignore[index]
    finally:
        agent.terminate()
        agent.wait(timeout=20)
    removed = subprocess.run([sys.executable, "-m", "envy", "service", "remove", "--share", str(farm.share),
                              "--dir", str(units)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert removed.returncode == 0 and not unit_file.exists()


def test_a_system_unit_runs_as_the_named_account_and_quotes_odd_paths(tmp_path: Path) -> None:
    share = tmp_path / 'odd "share" 100%'
    text = systemd_unit(_spec(share, account="render", environment={"ENVY_STATE_DIR": "/var/lib/envy"}))
    assert _unit_values(text, "User") == ["render"]
    assert parse_exec_start(text)[5] == str(share)
    user_text = systemd_unit(_spec(share, account="render", system=False))
    assert "User=" not in user_text and "WantedBy=default.target" in user_text


def test_the_launchd_daemon_runs_at_load_as_the_account(tmp_path: Path) -> None:
    spec = _spec(tmp_path, account="render", host="mac1")
    plist = plistlib.loads(launchd_plist(spec))
    assert plist["UserName"] == "render" and plist["RunAtLoad"] is True
    assert plist["ProgramArguments"][-3:] == ["--host", "mac1", "--render"]
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert entry_path(spec, platform="darwin").parent == Path("/Library/LaunchDaemons")


def test_the_windows_task_starts_at_boot_under_the_account_on_battery_too(tmp_path: Path) -> None:
    spec = _spec(Path("Z:/envy"), account="LAB\\render", python="C:\\Python312\\python.exe")
    xml = schtasks_xml(spec)
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    root = ET.fromstring(xml.split("\n", 1)[1])  # ElementTree refuses the UTF-16 declaration of a str
    assert root.find("t:Triggers/t:BootTrigger", ns) is not None
    assert root.findtext("t:Principals/t:Principal/t:UserId", namespaces=ns) == "LAB\\render"
    assert root.findtext("t:Principals/t:Principal/t:LogonType", namespaces=ns) == "Password"
    assert root.findtext("t:Settings/t:DisallowStartIfOnBatteries", namespaces=ns) == "false"
    assert root.findtext("t:Settings/t:ExecutionTimeLimit", namespaces=ns) == "PT0S"
    assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=ns) == "C:\\Python312\\python.exe"
    assert "--share" in (root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=ns) or "")
