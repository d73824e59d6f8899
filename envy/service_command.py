"""``envy service install|remove|status``: an agent that starts with the machine (see docs/admin-guide.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from envy.platform.dirs import share_key
from envy.platform.service import ServiceError, ServiceSpec, install, remove, status

# Variables passed on to the installed agent when they are set at install time.
_PASSED_ON = ("ENVY_STATE_DIR", "ENVY_CONFIG_DIR", "ENVY_LOG_DIR", "ENVY_POLICY")


def add_service_parser(sub: argparse._SubParsersAction) -> None:
    service = sub.add_parser("service", help="install, remove or show the agent's start-at-boot entry")
    service.add_argument("action", choices=["install", "remove", "status"])
    service.add_argument("--share", required=True, help="the Envy folder the agent serves")
    service.add_argument("--host", default=None, help="the host name the agent uses (default: the machine's name)")
    service.add_argument("--account", default=None,
                         help="the account the agent runs as (default: you); it needs the share mounted")
    service.add_argument("--user", action="store_true",
                         help="your own entry (systemd --user, a launch agent) instead of a system one")
    service.add_argument("--no-render", action="store_true", help="start idle instead of joining the render queue")
    service.add_argument("--dir", default=None, help="write the entry into this folder only, without registering it")


def spec_from_args(args: argparse.Namespace) -> ServiceSpec:
    share = os.path.abspath(args.share)
    env = {k: os.environ[k] for k in _PASSED_ON if os.environ.get(k)}
    return ServiceSpec(share=share, key=share_key(share), host=args.host, account=args.account,
                       system=not args.user, render=not args.no_render, python=sys.executable, environment=env)


def cmd_service(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    folder = Path(args.dir) if args.dir else None
    try:
        if args.action == "install":
            lines = install(spec, folder=folder, activate=folder is None)
        elif args.action == "remove":
            lines = remove(spec, folder=folder, activate=folder is None)
        else:
            lines = status(spec, folder=folder)
    except ServiceError as exc:
        print(f"envy service {args.action}: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0
