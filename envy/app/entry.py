"""The share copy's entry point: ``envy`` as usual, except an agent too old for the share refuses.

``io ...`` runs Envy IO instead (``python Z:/envy/app/envy.pyz io`` opens the
shell): a student on a lab machine submits and watches from the same copy.

An agent whose build does not speak the share's protocol (app/protocol.json)
writes one status file saying why (state ``too-old``), logs the same line, and
then does nothing but keep that status fresh and wait for a newer version to
be published (it then exits with 75, and the launcher starts the new one).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from envy import __version__
from envy.app.layout import AppLayout
from envy.app.protocol import ProtocolRange, read_share_protocol
from envy.app.publish import PublishError, read_current
from envy.share.fs import ShareFS

log = logging.getLogger("envy.app")

EXIT_RESTART = 75


def main(argv: Sequence[str] | None = None) -> int:
    from envy.cli import build_parser
    from envy.cli import main as envy_main

    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["io"]:
        from envy_io.cli import main as io_main

        return io_main(args_list[1:])
    if args_list[:1] == ["agent"]:
        args = build_parser().parse_args(args_list)
        from envy.share.fs import (
            REAL_FS,  # an entry point: it chooses the real filesystem
        )

        refused = refuse_if_too_old(args, REAL_FS)
        if refused is not None:
            return refused
    return envy_main(args_list)


def refuse_if_too_old(args: object, fs: ShareFS, stop: threading.Event | None = None) -> int | None:
    """None when this build may work on the share; else refuse (status + log), wait, and return 75."""
    from envy.config import load_config
    from envy.platform.host import host_name, user_name
    from envy.share.layout import ShareLayout

    config = load_config(
        share=getattr(args, "share", None),
        config_file=getattr(args, "config", None),
        user=user_name(),
        overrides=dict(getattr(args, "set", []) or []),
    )
    if not config.share:
        return None  # envy's own error message says how to give a share
    layout = ShareLayout(Path(config.share))
    app = AppLayout(layout.root)
    try:
        share_protocol = read_share_protocol(app, fs)
    except (OSError, ValueError) as exc:
        log.warning("cannot read the share protocol: %s (assuming protocol 1)", exc)
        share_protocol = 1
    problem = ProtocolRange().problem_with(share_protocol, __version__)
    if problem is None:
        return None
    host = getattr(args, "host", None) or host_name()
    _log_to_share(layout, host, problem)
    log.error("%s", problem)
    print(f"envy agent: {problem}", file=sys.stderr, flush=True)
    return _wait_for_newer(layout, app, host, problem, config.heartbeat, fs, stop or threading.Event())


def _wait_for_newer(
    layout: object, app: AppLayout, host: str, problem: str, heartbeat: float, fs: ShareFS, stop: threading.Event
) -> int:
    from envy.protocol.status import AgentStatus, write_status
    from envy.share.names import nonce

    status = AgentStatus(
        host=host,
        nonce=nonce(),
        pid=os.getpid(),
        version=__version__,
        state="too-old",
        message=problem,
        heartbeat=heartbeat,
        protocols=[ProtocolRange().oldest, ProtocolRange().newest],
    )
    mine = os.environ.get("ENVY_APP_VERSION", __version__)
    while not stop.is_set():
        status.counter += 1
        try:
            write_status(layout, status, fs)  # type: ignore[arg-type]
        except OSError as exc:
            log.warning("cannot write status: %s", exc)
        try:
            current = read_current(app, fs)
        except (OSError, PublishError):
            current = None
        if current is not None and current.version != mine:
            log.info("version %s is published: restarting into it", current.version)
            return EXIT_RESTART
        stop.wait(heartbeat)
    return EXIT_RESTART


def _log_to_share(layout: object, host: str, line: str) -> None:
    """One line in the agent's share log, as a working agent would write it."""
    try:
        folder = layout.host_logs(host)  # type: ignore[attr-defined]
        if not folder.parent.is_dir():
            return
        folder.mkdir(exist_ok=True)
        handler = logging.FileHandler(folder / "agent.log", encoding="utf-8")
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


if __name__ == "__main__":
    raise SystemExit(main())
