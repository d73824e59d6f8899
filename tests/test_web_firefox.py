"""The web monitor in a real headless Firefox, against a real farm (agent subprocesses rendering POV-Ray).

Firefox is driven through WebDriver BiDi, which it speaks itself
(tests/firefox_bidi.py): Debian has no geckodriver for Selenium. The visit is
test_web_browser.py's in short (that file covers the rest in Chromium): the
jobs page, the job page while the frames render and their thumbnails, the
hosts page reached and used with real key presses, and no request to anywhere
but the monitor. Each page's screenshot is kept as a test artifact
(firefox-*.png) and checked not to be blank.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import require_tool
from envy_io.errors import UsageError
from farm import Farm, wait_for
from firefox_bidi import ENTER, FIREFOX, TAB, Firefox, headless_firefox
from render_helpers import pov_frames, small_povray_profile, submit_folder
from web_helpers import artifact_dir, base_url, io_farm, png_not_blank, running_monitor

# One farm, monitor and browser for the module, and with the Chromium module in
# the same group one worker runs every browser (two at once would starve 2 cores).
pytestmark = pytest.mark.xdist_group("browser")

FRAMES = 4
MIN_PIXEL_STD = 8.0


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    require_tool(FIREFOX)
    require_tool("povray")
    root = tmp_path_factory.mktemp("firefoxfarm")
    farm = Farm(root)
    frames = pov_frames(root / "shot020" / "frames", FRAMES)
    profile = small_povray_profile(root / "povray-small.yaml")
    job = submit_folder(farm.share, frames, renderer="povray-small", profiles=[profile], name="shot020")
    agent = farm.start_agent("lab2-01", profiles=[str(profile)])
    try:
        iofarm = io_farm(farm)
        with running_monitor(iofarm) as monitor, headless_firefox() as browser:
            farm.wait_heartbeat(agent)
            yield {
                "farm": farm,
                "io": iofarm,
                "job": job,
                "browser": browser,
                "url": base_url(monitor),
                "shots": artifact_dir(root),
            }
    finally:
        farm.stop_all()


def tile_states(browser: Firefox) -> dict[str, str]:
    return browser.value(
        "Object.fromEntries([...document.querySelectorAll('.tile')].map(t => [t.dataset.item, t.dataset.state]))"
    )


def screenshot_not_blank(session: dict, name: str) -> None:
    std = png_not_blank(session["browser"].screenshot_png(), session["shots"] / f"firefox-{name}.png")
    assert std > MIN_PIXEL_STD, f"the {name} screenshot looks blank (pixel std {std:.1f})"


def test_jobs_page_shows_the_job(session: dict) -> None:
    browser, job = session["browser"], session["job"]
    browser.navigate(session["url"] + "/")
    row = f"document.querySelector(\"tr[data-job='{job.id}']\")"
    wait_for(lambda: browser.value(f"{row} !== null"), 30, "the job's row")
    text = browser.value(f"{row}.innerText")
    assert "shot020" in text and "active" in text and "povray-small" in text
    wait_for(
        lambda: browser.value("document.getElementById('live').textContent").startswith("live"),
        15,
        "the page's live feed (server-sent events)",
    )
    screenshot_not_blank(session, "jobs-page")


def test_job_page_grid_fills_in_with_thumbnails(session: dict) -> None:
    browser, job, farm = session["browser"], session["job"], session["farm"]
    browser.navigate(f"{session['url']}/job/{job.id}")
    wait_for(lambda: len(tile_states(browser)) == FRAMES, 30, "a tile per frame")
    assert set(tile_states(browser).values()) == {"pending"}
    farm.send("lab2 * render()")
    seen_done: list[int] = []

    def all_done() -> bool:
        n = sum(1 for s in tile_states(browser).values() if s == "done")
        if not seen_done or seen_done[-1] != n:
            seen_done.append(n)
        return n == FRAMES

    wait_for(all_done, 120, "every tile to turn done", interval=0.1)
    assert seen_done == sorted(seen_done) and any(0 < n < FRAMES for n in seen_done), (
        f"the grid filled in frame by frame, not at once: {seen_done}"
    )
    loaded = "[...document.querySelectorAll('.tile img')].filter(i => i.complete && i.naturalWidth > 0).length"
    wait_for(lambda: browser.value(loaded) == FRAMES, 30, "a thumbnail on every finished frame")
    screenshot_not_blank(session, "job-page")


def test_hosts_page_by_keyboard_shows_the_validators_message(session: dict) -> None:
    browser, iofarm = session["browser"], session["io"]
    browser.navigate(session["url"] + "/hosts")
    host_row = "document.querySelector(\"tr[data-host='lab2-01']\")"
    wait_for(
        lambda: browser.value(f"{host_row} !== null && {host_row}.dataset.state") in ("idle", "rendering"),
        30,
        "the host's row, seen alive",
    )
    browser.run(f"{host_row}.querySelector('input[type=checkbox]').click()")
    bad = "print(open('/etc/passwd'))"
    with pytest.raises(UsageError) as expected:
        iofarm.checker.instruction(f"lab2-01 {bad}")
    # From the top of the page, Tab alone reaches the command field.
    focused: list[str] = []
    for _ in range(10):
        browser.type_keys(TAB)
        focused.append(browser.value("document.activeElement.id || document.activeElement.tagName"))
        if focused[-1] == "command":
            break
    assert focused[-1] == "command", f"Tab did not reach the command field; focus went {focused}"
    browser.type_keys(bad + ENTER)  # Enter submits, as in the shell
    error = "document.getElementById('command-error').textContent"
    wait_for(lambda: browser.value(error), 15, "the field's error")
    assert browser.value(error) == str(expected.value)
    assert browser.value("document.activeElement.id") == "command", "focus stays in the field to fix it"
    screenshot_not_blank(session, "hosts-page")


def test_the_pages_request_nothing_from_elsewhere(session: dict) -> None:
    # Every request the pages made in this module's visit (scripts, styles,
    # thumbnails, the event stream, actions) went to the monitor itself: a lab
    # may have no internet, so no fonts or scripts from a CDN.
    requests = session["browser"].requests
    assert any(r.url.startswith(session["url"] + "/static/") for r in requests), "the pages' requests were seen"
    elsewhere = sorted({r.url for r in requests if not r.url.startswith(session["url"] + "/")})
    assert not elsewhere, f"the pages requested from elsewhere: {elsewhere}"
