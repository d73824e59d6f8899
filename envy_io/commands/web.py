"""``envy-io web [--port N] [--host ADDR] [--no-browser]``: the farm in the browser (see docs/web-monitor.md)."""

from __future__ import annotations

import argparse

from envy_io.registry import CommandEnv, Subcommand, count, seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=count(0, 65535),
        default=None,
        help="port to listen on (default 8190, or a free one if that is taken)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; any other needs the printed token)",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    parser.add_argument("--interval", type=seconds, default=1.0, help="seconds between reads of the share (default 1)")


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    from envy_io.web.server import (
        run_web,  # the web stack is imported only for this command
    )

    return run_web(env.farm, args.host, args.port, max(0.2, args.interval), not args.no_browser, env.out)


SUBCOMMANDS = [
    Subcommand(
        "web", "the farm in your browser: jobs, frames with thumbnails, hosts", add_arguments, run, in_shell=False
    )
]
