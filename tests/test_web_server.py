"""envy-io web without a browser: who may connect, one share reader for every tab, actions as the CLI's."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from envy.render.claims import ItemPattern, sort_listing
from envy.render.jobs import load_job
from envy.share.fs import REAL_FS, ShareFS
from envy_io.web.access import AccessRule, is_loopback
from farm import Farm, wait_for
from render_helpers import pov_frames, submit_folder
from web_helpers import base_url, io_farm, running_monitor


class CountingFS(ShareFS):
    """The real filesystem, counting listings of each folder (to prove there is one reader)."""

    def __init__(self) -> None:
        self.listings: dict[str, int] = {}
        self.lock = threading.Lock()

    def listdir(self, path):  # type: ignore[no-untyped-def]
        with self.lock:
            self.listings[Path(path).name] = self.listings.get(Path(path).name, 0) + 1
        return super().listdir(path)


def sse_events(url: str, want: int, timeout: float = 20, cookies: dict | None = None) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    kind = ""
    with httpx.stream("GET", url, timeout=timeout, cookies=cookies) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
                if len(events) >= want:
                    break
    return events


def test_loopback_by_default_and_host_header_checked(farm: Farm) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    with running_monitor(io_farm(farm)) as monitor:
        assert monitor.sock.getsockname()[0] == "127.0.0.1"
        assert "token" not in monitor.url
        url = base_url(monitor)
        assert httpx.get(url + "/api/snapshot").status_code == 200
        assert httpx.get(url + "/").text.startswith("<!doctype html>")
        # A page elsewhere reaching us through DNS rebinding arrives with its own name in Host.
        refused = httpx.get(url + "/api/snapshot", headers={"Host": "attacker.example:80"})
        assert refused.status_code == 421
        # A cross-site form cannot add our header: changes without it are refused.
        assert httpx.post(url + "/api/hosts/send", json={"command": "print('x')"}).status_code == 403


def test_other_addresses_need_the_token_as_header_cookie_or_query(farm: Farm) -> None:
    assert AccessRule.for_listen("127.0.0.1").token is None and AccessRule.for_listen("0.0.0.0").token
    with running_monitor(io_farm(farm), host="0.0.0.0") as monitor:
        token = monitor.url.split("?token=")[1]
        assert len(token) >= 24 and monitor.sock.getsockname()[0] == "0.0.0.0"
        url = base_url(monitor) + "/api/snapshot"
        denied = httpx.get(url)
        assert denied.status_code == 401 and "token required" in denied.text
        assert httpx.get(url, headers={"X-Envy-Token": "wrong"}).status_code == 401
        assert httpx.get(url, headers={"X-Envy-Token": token}).status_code == 200
        assert httpx.get(url, cookies={"envy_token": token}).status_code == 200
        first = httpx.get(base_url(monitor) + "/?token=" + token)
        assert first.status_code == 200
        cookie = first.headers["set-cookie"]
        assert cookie.startswith(f"envy_token={token}") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        # Server-sent events carry the cookie like any request of the page.
        assert sse_events(base_url(monitor) + "/api/events", 1, cookies={"envy_token": token})[0][0] == "snapshot"
        assert httpx.get(base_url(monitor) + "/api/events", timeout=5).status_code == 401


def test_one_share_reader_however_many_tabs_and_updates_within_one_poll(farm: Farm, tmp_path: Path) -> None:
    frames = pov_frames(tmp_path / "shot" / "frames", 3)
    job = submit_folder(farm.share, frames)
    fs = CountingFS()
    interval = 0.5
    with running_monitor(io_farm(farm, fs), interval=interval) as monitor:
        url = base_url(monitor) + "/api/events?job=" + job.id
        results: list[list[tuple[str, dict]]] = []
        tabs = [threading.Thread(target=lambda: results.append(sse_events(url, 8))) for _ in range(4)]
        # The job's folder is listed once per poll (status/ and jobs/ only every 10 s: discovery.py).
        before_polls, before_lists = monitor.poller.polls, fs.listings.get("frames", 0)
        for t in tabs:
            t.start()
        for t in tabs:
            t.join(timeout=30)
        polls = monitor.poller.polls - before_polls
        lists = fs.listings.get("frames", 0) - before_lists
        assert len(results) == 4 and all(any(kind == "job" for kind, _ in r) for r in results)
        assert lists == polls, f"{lists} listings of the job's folder for {polls} polls: one reader for 4 tabs"
        # A frame finishing on the share shows within one poll (plus the event's way to the page).
        name = next(p.name for p in frames.iterdir() if p.suffix == ".pov")
        done = name.replace(".pov", ".envy~done~lab1-01~9f2c01ab.pov")
        seen: list[float] = []

        def watch() -> None:
            with httpx.stream("GET", url, timeout=20) as response:
                for line in response.iter_lines():
                    if line.startswith("data: ") and '"done": 1' in line:
                        seen.append(time.monotonic())
                        return

        watcher = threading.Thread(target=watch)
        watcher.start()
        time.sleep(interval * 2)  # let the watcher see the state before the change (not a proof of absence)
        changed_at = time.monotonic()
        (frames / name).rename(frames / done)
        watcher.join(timeout=20)
        assert seen, "the change never reached the page"
        assert seen[0] - changed_at <= interval + 1.0, f"{seen[0] - changed_at:.2f} s from change to page"


def test_actions_from_the_page_are_the_cli_actions(farm: Farm, tmp_path: Path) -> None:
    frames = pov_frames(tmp_path / "shot" / "frames", 4)
    job = submit_folder(farm.share, frames)
    for name in sorted(p.name for p in frames.iterdir() if p.suffix == ".pov")[:2]:
        (frames / name).rename(frames / name.replace(".pov", ".envy~failed~3~lab1-01~9f2c01ab.pov"))
    with running_monitor(io_farm(farm)) as monitor:
        url = base_url(monitor)
        post = lambda path, data: httpx.post(url + path, json=data, headers={"X-Envy-Request": "1"})  # noqa: E731
        r = post(f"/api/jobs/{job.id}/action", {"action": "pause"})
        assert r.status_code == 200 and r.json()["lines"] == [f"{job.id}: paused"]
        assert load_job(farm.layout, job.id, REAL_FS).state == "paused"
        bad = post(f"/api/jobs/{job.id}/action", {"action": "priority", "value": "101"})
        assert (
            bad.status_code == 400 and bad.json()["error"] == "priority must be a whole number from 0 to 100, got '101'"
        )
        assert (
            post(f"/api/jobs/{job.id}/action", {"action": "explode"}).json()["error"].startswith("unknown job action")
        )
        assert post(f"/api/jobs/{job.id}/action", {"action": "priority", "value": 80}).status_code == 200
        assert load_job(farm.layout, job.id, REAL_FS).priority == 80
        assert post(f"/api/jobs/{job.id}/action", {"action": "archive"}).status_code == 200
        assert load_job(farm.layout, job.id, REAL_FS).archived
        r = post(f"/api/jobs/{job.id}/requeue", {"items": ["shot010.0001.pov"]})
        assert r.status_code == 200 and r.json()["lines"] == [f"{job.id}: 1 item(s) back to pending"]
        listing = sort_listing([p.name for p in frames.iterdir()], ItemPattern([".pov"]))
        assert (len(listing.pending), len(listing.failed)) == (3, 1)
        assert post(f"/api/jobs/{job.id}/action", {"action": "reset-failed"}).json()["lines"] == [
            f"{job.id}: 1 item(s) back to pending"
        ]
        assert post("/api/jobs/nosuchjob/action", {"action": "pause"}).status_code == 404
        # Commands to hosts: the shell's checker, and its words.
        r = post("/api/hosts/send", {"hosts": ["lab1-01"], "command": "print(open('x'))"})
        assert r.status_code == 400 and "not allowed" in r.json()["error"]
        r = post("/api/hosts/send", {"hosts": ["lab1-01", "lab1-02"], "command": "print('hi')"})
        assert r.status_code == 200 and len(r.json()["lines"]) == 2
        assert "lab1-02 print('hi')" in farm.layout.instructions.read_text()


@pytest.mark.parametrize("log_name", ["../../ENVY_SHARE.json", "x.lab1-01.1.log", "shot010.0001.lab1-01.1.txt"])
def test_logs_and_thumbs_only_of_the_jobs_items(farm: Farm, tmp_path: Path, log_name: str) -> None:
    job = submit_folder(farm.share, pov_frames(tmp_path / "shot" / "frames", 2))
    with running_monitor(io_farm(farm)) as monitor:
        url = base_url(monitor)
        assert httpx.get(f"{url}/api/jobs/{job.id}/logs/{log_name}").status_code == 404
        assert httpx.get(f"{url}/thumbs/{job.id}/..%2F..%2Fconfig.jpg").status_code == 404
        assert httpx.get(f"{url}/api/jobs/{job.id}").json()["items"][0]["name"] == "shot010.0001.pov"


def test_hostile_logs_and_thumbnails_on_the_share(farm: Farm, tmp_path: Path) -> None:
    """A FIFO where a log should be, a huge or symlinked thumbnail: refused, never a hang."""
    import os

    frames = pov_frames(tmp_path / "shot" / "frames", 2)
    job = submit_folder(farm.share, frames)
    for name in ("shot010.0001.pov", "shot010.0002.pov"):
        (frames / name).rename(frames / name.replace(".pov", ".envy~done~lab1-01~9f2c01ab.pov"))
    logs = farm.layout.jobs_dir / job.id / "logs"
    thumbs = farm.layout.jobs_dir / job.id / "thumbs"
    logs.mkdir(parents=True)
    thumbs.mkdir()
    os.mkfifo(logs / "shot010.0001.lab1-01.1.log")
    (logs / "shot010.0002.lab1-01.1.log").write_bytes(os.urandom(100_000) + b"\n=== envy: exit code 0 after 2.5 s\n")
    (thumbs / "shot010.0001.jpg").write_bytes(b"\xff" * 2_000_000)
    (tmp_path / "secret.jpg").write_bytes(b"secret")
    (thumbs / "shot010.0002.jpg").symlink_to(tmp_path / "secret.jpg")
    with running_monitor(io_farm(farm)) as monitor:
        url = base_url(monitor)
        wait_for(
            lambda: all(i["thumb"] for i in httpx.get(f"{url}/api/jobs/{job.id}").json()["items"]),
            20,
            "the thumbnails to be listed",
        )
        items = {i["base"]: i for i in httpx.get(f"{url}/api/jobs/{job.id}").json()["items"]}
        assert items["shot010.0002"]["seconds"] == 2.5 and items["shot010.0001"]["seconds"] is None
        started = time.monotonic()
        assert httpx.get(f"{url}/api/jobs/{job.id}/logs/shot010.0001.lab1-01.1.log", timeout=10).status_code == 404
        attempts = httpx.get(f"{url}/api/jobs/{job.id}/items/shot010.0001.pov", timeout=10).json()["attempts"]
        assert attempts == []  # the FIFO is not a log
        assert httpx.get(f"{url}/thumbs/{job.id}/shot010.0001.jpg", timeout=10).status_code == 404  # too large
        assert httpx.get(f"{url}/thumbs/{job.id}/shot010.0002.jpg", timeout=10).status_code == 404  # a link out
        assert time.monotonic() - started < 8
        assert httpx.get(f"{url}/api/jobs/{job.id}/logs/shot010.0002.lab1-01.1.log").text.endswith("after 2.5 s\n")


def test_render_times_come_from_the_status_files_and_logs_only_for_frames_done_before(
    farm: Farm, tmp_path: Path
) -> None:
    """The job page's render times cost no share reads beyond the monitor's: agents list their
    last frames and times in the status file. Only frames done before the page looked (no status
    names them any more) are looked up in the job's logs, once."""
    frames = pov_frames(tmp_path / "shot" / "frames", 3)
    job = submit_folder(farm.share, frames)
    fs = CountingFS()
    with running_monitor(io_farm(farm, fs), interval=0.5) as monitor:
        monitor.poller.watch(job.id)  # a job page is open
        agent = farm.start_agent("lab1-01")
        farm.wait_heartbeat(agent)
        farm.send("lab1-01 render()")

        def times() -> list:
            snap = monitor.hub.latest()
            view = snap.job(job.id) if snap else None
            return [i["seconds"] for i in view.items] if view else []

        monitor.poller.watch(job.id)
        wait_for(lambda: len(times()) == 3 and all(s is not None for s in times()), 120, "three render times")
        assert fs.listings.get("logs", 0) == 0, "render times read from the logs, not the status files"
        status = json.loads((farm.layout.status_dir / "lab1-01.json").read_text())
        assert {r["frame"] for r in status["recent"]} == {n.split(".envy~")[0].removesuffix(".pov")
                                                          for n in (p.name for p in frames.iterdir())
                                                          if ".envy~done~" in n}
    # A web monitor opened after the agent has gone (no status names the frames any more)
    # reads the job's logs once for them, and not again at each poll.
    agent.kill9()
    (farm.layout.status_dir / "lab1-01.json").unlink()
    fs2 = CountingFS()
    with running_monitor(io_farm(farm, fs2), interval=0.5) as monitor:
        monitor.poller.watch(job.id)

        def later_times() -> list:
            snap = monitor.hub.latest()
            view = snap.job(job.id) if snap else None
            return [i["seconds"] for i in view.items] if view else []

        wait_for(lambda: len(later_times()) == 3 and all(s is not None for s in later_times()), 30,
                 "render times from the logs")
        polls = monitor.poller.polls
        wait_for(lambda: monitor.poller.polls >= polls + 4, 30, "four more polls")
        assert fs2.listings.get("logs", 0) == 1, fs2.listings


def test_new_agents_and_jobs_show_within_the_discovery_interval_and_a_page_opened_on_one_at_once(
    farm: Farm, tmp_path: Path
) -> None:
    from envy_io.web.discovery import DISCOVER_S

    fs = CountingFS()
    with running_monitor(io_farm(farm, fs), interval=0.3) as monitor:
        polls = monitor.poller.polls
        wait_for(lambda: monitor.poller.polls >= polls + 6, 30, "six polls")
        assert fs.listings.get("status", 0) <= 2 and fs.listings.get("jobs", 0) <= 2  # not once per poll
        job = submit_folder(farm.share, pov_frames(tmp_path / "shot" / "frames", 1))
        agent = farm.start_agent("lab1-01")
        wait_for(lambda: (snap := monitor.hub.latest()) is not None and snap.job(job.id) is not None
                 and any(h["host"] == "lab1-01" for h in snap.hosts), DISCOVER_S + 15, "the new job and agent")
        second = submit_folder(farm.share, pov_frames(tmp_path / "shot2" / "frames", 1))
        monitor.poller.watch(second.id)  # a page opened on it (e.g. from a link)
        wait_for(lambda: (snap := monitor.hub.latest()) is not None and snap.job(second.id) is not None, 5,
                 "the job whose page was opened")
        agent.kill9()


def test_a_job_waiting_for_another_says_so_on_the_page(farm: Farm, tmp_path: Path) -> None:
    first = submit_folder(farm.share, pov_frames(tmp_path / "cache" / "frames", 1), name="cache")
    second = submit_folder(farm.share, pov_frames(tmp_path / "render" / "frames", 1), name="render",
                           after=[first.id])
    with running_monitor(io_farm(farm)) as monitor:
        def states() -> dict[str, str]:
            snap = monitor.hub.latest()
            return {v.job.name: v.progress.state for v in snap.jobs} if snap else {}

        wait_for(lambda: len(states()) == 2, 15, "both jobs on the page")
        assert states() == {"cache": "active", "render": "waiting for cache"}
        assert monitor.hub.latest().detail_json(second.id)["state"] == "waiting for cache"  # type: ignore[union-attr]


def test_a_scene_that_names_its_own_output_shows_that_output(farm: Farm, tmp_path: Path) -> None:
    scene = tmp_path / "anim" / "ball.pov"
    scene.parent.mkdir()
    scene.write_text("#version 3.7;\nsphere { <clock, 0, 0>, 1 pigment { rgb 1 } }\n")
    job = submit_folder(farm.share, scene, frames="1-2")
    path = farm.layout.jobs_dir / f"{job.id}.json"
    data = json.loads(path.read_text())
    assert data["kind"] == "tasks" and not data.get("output")
    data["settings"] = {**data.get("settings", {}), "scene_output": "//renders/ball_##"}  # as a .blend's
    path.write_text(json.dumps(data))
    with running_monitor(io_farm(farm)) as monitor:
        wait_for(lambda: (s := monitor.hub.latest()) is not None and s.job(job.id) is not None
                 and s.job(job.id).output == "//renders/ball_##", 15, "the scene's own output on the page")  # type: ignore[union-attr]


def test_the_hosts_page_says_idle_for_render_mode_with_nothing_to_claim() -> None:
    from envy.protocol.status import AgentStatus, WorkerStatus
    from envy_io.agents import ALIVE, AgentView
    from envy_io.web.views import host_state

    def state(**fields: object) -> str:
        return host_state(AgentView(AgentStatus(host="lab1-01", nonce="n", **fields), True, 0.1, ALIVE), 30)  # type: ignore[arg-type]

    assert state(state="rendering", work="queue empty") == "idle"
    assert state(state="rendering", work="waiting: comp020 waiting for shot020") == "idle"
    assert state(state="rendering", work="", workers=[WorkerStatus(0, job="j", frame="f")]) == "rendering"
