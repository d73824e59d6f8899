"""The web monitor in a real headless Chromium, against a real farm (agent subprocesses rendering POV-Ray).

One browser and one farm for the module (starting Chromium is the slow part);
the steps run in order like a user's visit: jobs page, job page while the
frames render, a requeue, the hosts page with a bad command. Each page's
screenshot is kept as a test artifact and checked not to be blank.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import require_tool
from envy_io.errors import UsageError
from farm import Farm, wait_for
from render_helpers import completions, pov_frames, small_povray_profile, submit_folder
from web_helpers import (
    CHROMEDRIVER,
    artifact_dir,
    base_url,
    chromium_driver,
    io_farm,
    running_monitor,
    screenshot_not_blank,
)

# One farm, monitor and browser for the module: one worker runs it all.
pytestmark = pytest.mark.xdist_group("browser")

FRAMES = 6
MIN_PIXEL_STD = 8.0


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    require_tool("chromium")
    require_tool("chromedriver")
    require_tool("povray")
    root = tmp_path_factory.mktemp("webfarm")
    farm = Farm(root)
    frames = pov_frames(root / "shot010" / "frames", FRAMES)
    profile = small_povray_profile(root / "povray-small.yaml")
    job = submit_folder(farm.share, frames, renderer="povray-small", profiles=[profile], name="shot010")
    agent = farm.start_agent("lab1-01", profiles=[str(profile)])
    driver = None
    try:
        iofarm = io_farm(farm)
        with running_monitor(iofarm) as monitor:
            driver = chromium_driver()
            driver.set_page_load_timeout(180)
            farm.wait_heartbeat(agent)
            yield {
                "farm": farm,
                "io": iofarm,
                "job": job,
                "frames": frames,
                "agent": agent,
                "driver": driver,
                "url": base_url(monitor),
                "shots": artifact_dir(root),
                "monitor": monitor,
            }
    finally:
        if driver is not None:
            driver.quit()
        farm.stop_all()


def js(driver, script: str, *args):  # type: ignore[no-untyped-def]
    return driver.execute_script(script, *args)


def tile_states(driver) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return js(
        driver,
        "return Object.fromEntries([...document.querySelectorAll('.tile')]"
        ".map(t => [t.dataset.item, t.dataset.state]))",
    )


def test_jobs_page_shows_the_job(session: dict) -> None:
    driver, job = session["driver"], session["job"]
    driver.get(session["url"] + "/")
    row = f"tr[data-job='{job.id}']"
    wait_for(lambda: js(driver, f'return document.querySelector("{row}") !== null'), 30, "the job's row")
    text = js(driver, f'return document.querySelector("{row}").innerText')
    assert "shot010" in text and "active" in text and "povray-small" in text
    assert js(driver, "return document.getElementById('live').textContent").startswith("live")
    std = screenshot_not_blank(driver, session["shots"] / "jobs-page.png")
    assert std > MIN_PIXEL_STD, f"the jobs page screenshot looks blank (pixel std {std:.1f})"
    assert CHROMEDRIVER


def test_job_page_grid_fills_in_with_thumbnails(session: dict) -> None:
    driver, job, farm = session["driver"], session["job"], session["farm"]
    driver.get(f"{session['url']}/job/{job.id}")
    wait_for(lambda: len(tile_states(driver)) == FRAMES, 30, "a tile per frame")
    assert set(tile_states(driver).values()) == {"pending"}
    farm.send("lab1 * render()")
    seen_done: list[int] = []

    def all_done() -> bool:
        n = sum(1 for s in tile_states(driver).values() if s == "done")
        if not seen_done or seen_done[-1] != n:
            seen_done.append(n)
        return n == FRAMES

    wait_for(all_done, 120, "every tile to turn done", interval=0.1)
    assert seen_done == sorted(seen_done) and len({n for n in seen_done if 0 < n < FRAMES}) >= 2, (
        f"the grid filled in frame by frame, not at once: {seen_done}"
    )
    # The chart of render times has a bar per finished frame.
    wait_for(
        lambda: js(driver, "return document.querySelectorAll('#chart-frames rect').length") == FRAMES,
        15,
        "a render-time bar per frame",
    )


def test_a_thumbnail_appears_for_a_finished_frame(session: dict) -> None:
    driver, job, farm = session["driver"], session["job"], session["farm"]
    thumbs = farm.layout.jobs_dir / job.id / "thumbs"
    wait_for(lambda: thumbs.is_dir() and len(list(thumbs.glob("*.jpg"))) == FRAMES, 30, "the agent's thumbnails")
    loaded = "return [...document.querySelectorAll('.tile img')].filter(i => i.complete && i.naturalWidth > 0).length"
    wait_for(lambda: js(driver, loaded) == FRAMES, 15, "a thumbnail on every finished frame")
    std = screenshot_not_blank(driver, session["shots"] / "job-page.png")
    assert std > MIN_PIXEL_STD, f"the job page screenshot looks blank (pixel std {std:.1f})"


def test_preview_shows_attempts_and_the_log(session: dict) -> None:
    driver = session["driver"]
    js(driver, "document.querySelector('.tile[data-item=\"shot010.0002.pov\"] button.open').click()")
    wait_for(lambda: js(driver, "return document.getElementById('preview').open"), 10, "the preview dialog")
    wait_for(
        lambda: "lab1-01" in js(driver, "return document.querySelector('#attempts tbody').innerText"),
        15,
        "the attempt's host",
    )
    wait_for(
        lambda: "exit code 0" in js(driver, "return document.getElementById('log').textContent"), 15, "the frame's log"
    )
    screenshot_not_blank(driver, session["shots"] / "frame-preview.png")
    js(driver, "document.getElementById('preview-close').click()")


def test_requeue_from_the_page_renders_the_frame_again(session: dict) -> None:
    driver, farm = session["driver"], session["farm"]
    before = completions([farm.log("lab1-01")], "shot010.0003")
    assert before == 1
    js(driver, "document.querySelector('.tile[data-item=\"shot010.0003.pov\"] input[type=checkbox]').click()")
    wait_for(lambda: not js(driver, "return document.getElementById('requeue').disabled"), 5, "requeue to be enabled")
    js(driver, "document.getElementById('requeue').click()")
    wait_for(
        lambda: "1 item(s) back to pending" in js(driver, "return document.getElementById('message').textContent"),
        15,
        "the requeue's answer",
    )
    wait_for(lambda: completions([farm.log("lab1-01")], "shot010.0003") == 2, 60, "the requeued frame to render again")
    wait_for(lambda: tile_states(driver).get("shot010.0003.pov") == "done", 15, "its tile to be done again")


def test_hosts_page_shows_the_validators_message(session: dict) -> None:
    driver, ioframe = session["driver"], session["io"]
    driver.get(session["url"] + "/hosts")
    wait_for(
        lambda: js(driver, "return document.querySelector(\"tr[data-host='lab1-01']\") !== null"), 30, "the host's row"
    )
    wait_for(
        lambda: (
            js(driver, "return document.querySelector(\"tr[data-host='lab1-01']\").dataset.state")
            in ("idle", "rendering")
        ),
        30,
        "the host to be seen alive",
    )
    bad = "print(open('/etc/passwd'))"
    with pytest.raises(UsageError) as expected:
        ioframe.checker.instruction(f"lab1-01 {bad}")
    js(driver, "document.querySelector(\"tr[data-host='lab1-01'] input[type=checkbox]\").click()")
    field = driver.find_element("id", "command")
    field.send_keys(bad)
    field.send_keys("\n")  # Enter submits, as in the shell
    wait_for(lambda: js(driver, "return document.getElementById('command-error').textContent"), 15, "the field's error")
    assert js(driver, "return document.getElementById('command-error').textContent") == str(expected.value)
    assert js(driver, "return document.activeElement.id") == "command", "focus stays in the field to fix it"
    std = screenshot_not_blank(driver, session["shots"] / "hosts-page.png")
    assert std > MIN_PIXEL_STD, f"the hosts page screenshot looks blank (pixel std {std:.1f})"
