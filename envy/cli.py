"""``envy``: set up a share, run the agent, run the demo.

A known error prints one line and exits 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from envy import __version__
from envy.config import ConfigError, load_config
from envy.platform.host import host_name, local_dirs, user_name, validate_host_name
from envy.service_command import add_service_parser, cmd_service
from envy.share.fs import REAL_FS

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit 2."""


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set takes KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envy", description="Envy render farm: the agent and share tools.")
    parser.add_argument("--version", action="version", version=f"envy {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="create the Envy folder on the share")
    init.add_argument("share", help="the Envy folder on the share, e.g. Z:/envy")
    init.add_argument("--user", default=None, help="whose user folder to create (default: you)")
    init.add_argument("--with-app", action="store_true",
                      help="also put a runnable copy of Envy on the share (needs pex: pip install 'envy[app]')")
    init.add_argument("--from", dest="from_file", default=None, help="with --with-app: publish this build")

    from envy.doctor.cli import add_doctor_parser

    add_doctor_parser(sub)
    app = sub.add_parser("app", help="the runnable copy on the share: build, update, rollback, status",
                         add_help=False)
    app.add_argument("app_args", nargs=argparse.REMAINDER)

    agent = sub.add_parser("agent", help="run the agent on this machine")
    agent.add_argument("--share", default=None, help="the Envy folder (or ENVY_SHARE, or 'share' in config)")
    agent.add_argument("--host", default=None, help="act as this host name (default: the machine's name)")
    agent.add_argument("--config", default=None, help="a config file instead of the user's local one")
    agent.add_argument("--set", action="append", type=_setting, default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set heartbeat=1")
    agent.add_argument("--policy", default=None, help="the lockdown policy file (or ENVY_POLICY)")
    agent.add_argument("--render", action="store_true",
                       help="start in render mode: work through the active jobs at once (for lab startup scripts)")
    agent.add_argument("-v", "--verbose", action="count", default=0)

    add_service_parser(sub)

    demo = sub.add_parser("demo", help="run a local demo farm that renders real frames")
    demo.add_argument("--dir", default="envy-demo", help="where to create the demo share (default: ./envy-demo)")
    demo.add_argument("--agents", type=int, default=3, help="how many local agents (default 3)")
    demo.add_argument("--frames", type=int, default=24, help="frames to render (default 24)")
    demo.add_argument("--renderer", choices=["auto", "povray", "builtin"], default="auto",
                      help="POV-Ray if installed, else Envy's small built-in renderer")
    demo.add_argument("--no-monitor", action="store_true", help="print plain progress lines instead of the live view")
    return parser


def cmd_init(args: argparse.Namespace) -> int:
    from envy.share.layout import init_share

    root = Path(args.share)
    if args.with_app:
        from envy.app.cli import main as app_main

        extra = ["--user", args.user] if args.user else []
        extra += ["--from", args.from_file] if args.from_file else []
        return app_main(["init", str(root), *extra], REAL_FS)
    created = init_share(root, args.user or user_name(), REAL_FS)
    print(f"Envy share ready at {root} ({len(created)} item(s) created)")
    print(f"Start agents with:  envy agent --share {root}")
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    from envy.agent.agent import EXIT_RESTART
    from envy.agent.build import build_agent
    from envy.app.version_watch import version_watch_for
    from envy.local_state import AlreadyRunning, claim_agent
    from envy.logs import log_dir_for, setup_agent_logging
    from envy.platform.reexec import reexec
    from envy.platform.session_end import SessionEndWatcher
    from envy.policy.enforce import PolicyRefusal
    from envy.protocol.file_signing import SignedFiles
    from envy.protocol.signing import SigningError, default_key_path, load_key
    from envy.share.bounded import FileTrust
    from envy.share.layout import ShareLayout

    host = args.host or host_name()
    try:
        validate_host_name(host)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    user = user_name()
    dirs = local_dirs()  # ENVY_STATE_DIR, ENVY_CONFIG_DIR, ENVY_LOG_DIR: read here, once
    overrides = dict(args.set)
    if args.policy:
        overrides["policy"] = args.policy

    trust: FileTrust | None = None

    def load() -> Any:
        # Without --config, load_config reads the user's file from ENVY_CONFIG_DIR's folder
        # (envy/config.py; LocalDirs.config names the same folder).
        return load_config(share=args.share, config_file=args.config, user=user, overrides=overrides, trust=trust)

    config = load()
    if not config.share:
        raise UsageError("no share given: use --share DIR, set ENVY_SHARE, or put 'share:' in your config.yaml")
    layout = ShareLayout(Path(config.share))
    state_dir = dirs.agent_state(host, layout.root)
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        claim_agent(state_dir, host, layout.root)
    except AlreadyRunning as exc:
        raise UsageError(str(exc)) from None
    log_dir = log_dir_for(layout.logs_dir, host, dirs.logs)
    setup_agent_logging(log_dir / "agent.log", state_dir / "agent-local.log", args.verbose,
                        config.log_max_bytes, config.log_backups, local=dirs.logs is not None)
    if config.signed:
        # Signed mode: load again, keeping only what the farm key covers of the share's config
        # files; a refusal is logged (to the share log too) naming the file and the keys.
        try:
            key = load_key(default_key_path(state_dir=dirs.state), config.share)
        except SigningError as exc:
            log.error("%s", exc)
            raise UsageError(str(exc)) from None
        trust = SignedFiles(key, config.share, REAL_FS).problem
        config = load()
    try:
        agent = build_agent(config, layout, host, user, dirs, fs=REAL_FS, log_dir=log_dir, reload_config=load,
                            render_at_start=args.render,
                            version_watch=version_watch_for(layout.root, REAL_FS, os.environ))
    except (SigningError, PolicyRefusal) as exc:
        log.error("%s", exc)  # also in the share log: an agent started at log-in has no console
        raise UsageError(str(exc)) from None
    # Sign-out, shut-down, a closed terminal, Ctrl-C: one clean stop (envy/platform/session_end.py).
    session_end = SessionEndWatcher(agent.request_stop)
    session_end.start()
    try:
        code = agent.run()
    finally:
        session_end.finished()  # Windows holds the process for us until here
        session_end.close()
    if code == EXIT_RESTART:
        argv = sys.argv[1:] if sys.argv and sys.argv[0].endswith(("envy", "envy.exe", "__main__.py")) else []
        reexec(argv or ["agent", "--share", str(layout.root), "--host", host])
    return code


def cmd_demo(args: argparse.Namespace) -> int:
    from envy.demo import run_demo

    return run_demo(args)


def cmd_doctor(args: argparse.Namespace) -> int:
    from envy.doctor.cli import cmd_doctor as doctor

    return doctor(args, REAL_FS)


def cmd_app(args: argparse.Namespace) -> int:
    from envy.app.cli import main as app_main

    return app_main(args.app_args, REAL_FS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "agent":
        logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    handlers = {"init": cmd_init, "agent": cmd_agent, "demo": cmd_demo, "service": cmd_service,
                "doctor": cmd_doctor, "app": cmd_app}
    try:
        return handlers[args.command](args)
    except (UsageError, ConfigError) as exc:
        if args.debug:
            raise
        print(f"envy {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
