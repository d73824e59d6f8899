"""``envy-io web``: build the poller, the app and the listening socket, then serve until Ctrl-C.

One place wires the parts (ARCHITECTURE: explicit wiring): the farm (settings,
share, checker, sender) is passed in; the poller is the only reader of the
share for the pages; uvicorn serves the Starlette app on a socket we bind
ourselves, so the address is known before the browser opens.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
import threading
import webbrowser
from dataclasses import dataclass
from typing import Any, TextIO

import uvicorn

from envy.render.jobs import Job
from envy.render.remap import PathRemap
from envy_io.errors import UsageError
from envy_io.web.access import AccessRule
from envy_io.web.app import SnapshotHub, build_app
from envy_io.web.snapshot import FarmPoller

log = logging.getLogger(__name__)

DEFAULT_PORT = 8190
SHUTDOWN_GRACE_S = 1


@dataclass
class WebMonitor:
    """A running monitor: its URL, and how to stop it (tests start one in a thread)."""

    url: str
    server: uvicorn.Server
    poller: FarmPoller
    hub: SnapshotHub
    sock: socket.socket

    def serve(self) -> None:
        self.poller.start()
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.hub.close()
            self.poller.stop()
            self.poller.join(timeout=5)

    def stop(self) -> None:
        self.hub.close()
        self.server.should_exit = True


def bind(host: str, port: int, fallback: bool) -> socket.socket:
    """Listen on ``host:port``; a busy default port falls back to any free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE and fallback:
            sock.bind((host, 0))
        else:
            sock.close()
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another --port)") from None
    sock.listen(64)
    sock.setblocking(False)
    return sock


def make_monitor(
    farm: Any,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    interval: float = 1.0,
    token: str | None = None,
    fallback_port: bool = False,
) -> WebMonitor:
    rule = AccessRule.for_listen(host, token)
    hub = SnapshotHub()

    def remap(job: Job) -> PathRemap:
        return PathRemap.parse([*farm.config.remap, *job.remap])

    poller = FarmPoller(farm.board, remap, hub.publish, interval)
    app = build_app(farm, poller, hub, rule)
    sock = bind(host, port, fallback_port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/" + (f"?token={rule.token}" if rule.token else "")
    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_S, lifespan="on", access_log=False
    )
    return WebMonitor(url, uvicorn.Server(config), poller, hub, sock)


def run_web(
    farm: Any, host: str, port: int | None, interval: float, open_browser: bool, out: TextIO = sys.stdout
) -> int:
    monitor = make_monitor(farm, host, DEFAULT_PORT if port is None else port, interval, fallback_port=port is None)
    if AccessRule.for_listen(host).token is not None:
        out.write(
            f"envy-io web: listening on {host}, not only this machine: anyone with the token below can "
            "pause, cancel and requeue jobs and send commands as you\n"
        )
    out.write(f"Envy web monitor: {monitor.url}   (Ctrl-C to stop)\n")
    out.flush()
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(monitor.url,)).start()
    try:
        monitor.serve()
    except KeyboardInterrupt:
        pass
    return 0
