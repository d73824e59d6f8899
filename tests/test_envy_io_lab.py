"""Envy IO in a lab where some machines are always off: real agents, one of them killed.

``status`` answers at once with the dead agent around, ``forget`` takes it off
the lists (and refuses a live one), the monitor shows it stale on its first
screen and keeps print() messages out of the work column, ``send`` refuses a
line that reaches nobody unless ``--force``, and both give ``--json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envy.protocol.status import AgentStatus, write_status
from envy.render.remap import PathRemap
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share
from envy_io.cli import main
from envy_io.log_setup import teardown_logging
from envy_io.monitor import MonitorModel
from farm import Farm, wait_for

LIVE, DEAD = "lab5-01", "lab5-02"
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """Two real agents; the second (a slow 5 s heartbeat, so waiting for it would show) is killed."""
    farm = Farm(tmp_path_factory.mktemp("lab"))
    # Envy IO's own settings: an agent silent for 8 s is dead (the slow one beats every 5 s).
    (farm.root / "config").mkdir(parents=True, exist_ok=True)
    (farm.root / "config" / "config.yaml").write_text("heartbeat: 0.5\ndead_after: 8\n", encoding="utf-8")
    try:
        live = farm.start_agent(LIVE)
        dead = farm.start_agent(DEAD, heartbeat=5, dead_after=12)
        farm.wait_heartbeat(live)
        farm.wait_heartbeat(dead)
        assert verdicts(farm) == {LIVE: "alive", DEAD: "alive"}  # this machine has watched both beat
        dead.kill9()
        wait_for(lambda: verdicts(farm).get(DEAD) == "stale", DEADLINE_S, f"{DEAD} to be called stale")
        yield farm
    finally:
        farm.stop_all()


def envy_io(farm: Farm, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envy_io", "--share", str(farm.share), *argv], env=farm.env,
                          capture_output=True, text=True, timeout=DEADLINE_S)


def verdicts(farm: Farm) -> dict[str, str]:
    done = envy_io(farm, "status", "--json")
    assert done.returncode == 0, done.stderr
    return {a["host"]: a["verdict"] for a in json.loads(done.stdout)}


@pytest.fixture
def as_lab_user(lab: Farm, monkeypatch: pytest.MonkeyPatch) -> Iterator[Farm]:
    """Run ``envy-io`` in this process with the lab's local folders (its saved sightings)."""
    for name in ("ENVY_STATE_DIR", "ENVY_CONFIG_DIR"):
        monkeypatch.setenv(name, lab.env[name])
    yield lab
    teardown_logging()


def test_status_answers_at_once_with_a_dead_agent_around(as_lab_user: Farm, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = main(["--share", str(as_lab_user.share), "status"])
    took = time.monotonic() - started
    out = capsys.readouterr().out

    assert code == 0
    rows = out.splitlines()
    assert any(f"- {LIVE} -" in row and row.endswith("idle") for row in rows), out
    assert any(f"- {DEAD} -" in row and row.endswith("(stale)") for row in rows), out
    # Never waited for the dead agent's 5 s heartbeat (the old status sat out heartbeat + 1 s = 6 s).
    assert took < 3.0, f"status took {took:.1f} s"


def test_the_monitor_shows_the_dead_agent_stale_on_its_first_screen(lab: Farm) -> None:
    lab.send(f"{LIVE} print('hello-from-the-test')")
    wait_for(lambda: "hello-from-the-test" in json.dumps(lab.status(LIVE)), DEADLINE_S, "the message in the status")

    done = envy_io(lab, "monitor", "--once")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("lab5-")}
    assert "(stale)" in rows[DEAD] and "(stale)" not in rows[LIVE]
    assert "hello-from-the-test" not in done.stdout  # a print() message is not work

    snapshot = envy_io(lab, "monitor", "--once", "--json")
    assert snapshot.returncode == 0, snapshot.stderr
    data = json.loads(snapshot.stdout)
    assert {a["host"]: a["verdict"] for a in data["agents"]} == {LIVE: "alive", DEAD: "stale"}
    assert data["jobs"] == []


def test_send_refuses_a_lab_name_without_star_unless_forced(lab: Farm) -> None:
    refused = envy_io(lab, "send", "lab5 print('x')")
    assert refused.returncode == 2 and refused.stdout == ""
    assert len(refused.stderr.splitlines()) == 1 and "lab5 * print('x')" in refused.stderr

    forced = envy_io(lab, "send", "--force", "--json", "lab5 print('x')")
    assert forced.returncode == 0, forced.stderr
    sent = json.loads(forced.stdout)["sent"]
    assert [(s["line"], s["selector"]) for s in sent] == [("lab5 print('x')", "lab5")] and sent[0]["id"]

    unknown = envy_io(lab, "send", "* render('nojob')")
    assert unknown.returncode == 2 and "no job is named 'nojob'" in unknown.stderr
    assert len(unknown.stderr.splitlines()) == 1


def test_monitor_json_needs_once(lab: Farm) -> None:
    done = envy_io(lab, "monitor", "--json")
    assert done.returncode == 2 and "--json needs --once" in done.stderr


def test_forget_refuses_a_live_agent_and_removes_only_a_dead_ones_status_file(lab: Farm) -> None:
    live_file, dead_file = lab.layout.status_file(LIVE), lab.layout.status_file(DEAD)
    dead_logs = lab.layout.host_logs(DEAD)
    assert dead_logs.is_dir()

    refused = envy_io(lab, "forget", LIVE)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert f"{LIVE} is alive" in refused.stderr and "--force" in refused.stderr
    unknown = envy_io(lab, "forget", "lab5-2")
    assert unknown.returncode == 2 and f"did you mean {DEAD}?" in unknown.stderr
    assert live_file.is_file() and dead_file.is_file()

    forgot = envy_io(lab, "forget", DEAD)
    assert forgot.returncode == 0, forgot.stderr
    assert f"removed status/{DEAD}.json" in forgot.stdout
    assert not dead_file.exists() and live_file.is_file() and dead_logs.is_dir()  # nothing else touched
    assert verdicts(lab) == {LIVE: "alive"}


def test_monitor_rows_that_do_not_fit_end_in_n_more(tmp_path: Path) -> None:
    init_share(tmp_path / "share", "student", fs=REAL_FS)
    layout = ShareLayout(tmp_path / "share")
    for number in range(1, 31):
        write_status(layout, AgentStatus(host=f"lab9-{number:02d}", nonce="n", state="idle"), fs=REAL_FS)
    model = MonitorModel(layout, 30, PathRemap.parse([]), REAL_FS)
    model.refresh()

    everything = model.lines()
    shown = model.lines(width=60, height=12)

    assert len(shown) == 12 and all(len(line) <= 60 for line in shown[:-1])
    assert shown[-1].startswith(f"+{len(everything) - 11} more")
    assert shown[:11] == [line[:60] for line in everything[:11]]


def test_monitor_says_idle_for_render_mode_with_nothing_to_claim(tmp_path: Path) -> None:
    init_share(tmp_path / "share", "student", fs=REAL_FS)
    layout = ShareLayout(tmp_path / "share")
    write_status(layout, AgentStatus(host="lab1-01", nonce="n", state="rendering", work="queue empty"), fs=REAL_FS)
    write_status(layout, AgentStatus(host="lab1-02", nonce="n", state="rendering",
                                     work="waiting: comp020 waiting for shot020"), fs=REAL_FS)
    model = MonitorModel(layout, 30, PathRemap.parse([]), REAL_FS)
    model.refresh()
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in model.lines() if line.startswith("lab1-")}
    assert rows["lab1-01"][0] == "idle" and rows["lab1-01"][1].endswith("queue empty")
    assert rows["lab1-02"][0] == "idle" and "comp020 waiting for shot020" in rows["lab1-02"][1]
