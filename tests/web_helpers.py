"""Helpers for the web monitor tests: a real monitor in a thread, and a real headless Chromium or Firefox."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from envy.config import load_config
from envy.share.fs import REAL_FS
from envy_io.farm import Farm as IoFarm
from envy_io.web.server import WebMonitor, make_monitor
from farm import Farm, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def io_farm(farm: Farm, fs=None) -> IoFarm:  # type: ignore[no-untyped-def]
    config = load_config(
        share=str(farm.share),
        user=farm.user,
        overrides={k: farm.settings[k] for k in ("heartbeat", "poll_interval", "dead_after")},
    )
    return IoFarm.open(config, farm.user, fs if fs is not None else REAL_FS)


@contextmanager
def running_monitor(farm: IoFarm, host: str = "127.0.0.1", interval: float = 0.3) -> Iterator[WebMonitor]:
    monitor = make_monitor(farm, host=host, port=0, interval=interval)
    thread = threading.Thread(target=monitor.serve, name="test-web-monitor", daemon=True)
    thread.start()
    try:
        wait_for(lambda: monitor.server.started and monitor.hub.latest() is not None, 30, "the monitor to start")
        yield monitor
    finally:
        monitor.stop()
        thread.join(timeout=15)


def base_url(monitor: WebMonitor) -> str:
    return f"http://127.0.0.1:{monitor.sock.getsockname()[1]}"


def artifact_dir(tmp_path: Path) -> Path:
    """Screenshots go to $ENVY_TEST_ARTIFACTS when set (CI keeps them), else the test's temp folder."""
    folder = Path(os.environ.get("ENVY_TEST_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium_driver():  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--window-size=1366,900",
        f"--user-data-dir={tempfile.mkdtemp(prefix='envy-chromium-')}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def screenshot_not_blank(driver, path: Path) -> float:  # type: ignore[no-untyped-def]
    """Save a Selenium driver's screenshot and return its pixel standard deviation (see ``png_not_blank``)."""
    return png_not_blank(driver.get_screenshot_as_png(), path)


def png_not_blank(png: bytes, path: Path) -> float:
    """Save a screenshot (PNG bytes, from any browser) and return its pixel standard deviation (a blank page is ~0)."""
    import io

    import numpy as np
    from PIL import Image

    path.write_bytes(png)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)
    return float(pixels.std())
