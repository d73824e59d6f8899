"""``envy-io status``: one line per agent, alive or stale, judged by watching heartbeats."""

from __future__ import annotations

import argparse
import json

from envy_io.agents import MAX_DEFAULT_WAIT_S, agent_json, format_agent
from envy_io.registry import CommandEnv, Subcommand, seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of lines")
    parser.add_argument(
        "--wait", type=seconds, default=None, metavar="S",
        help="how long to watch for heartbeats of agents not yet seen alive "
        f"(default: the slowest heartbeat + 1 s, at most {MAX_DEFAULT_WAIT_S:g} s)",
    )


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    board = env.farm.board
    warnings = board.refresh()
    wait = board.default_wait() if args.wait is None else args.wait
    try:
        warnings += board.wait_for_heartbeats(wait)
    finally:
        board.save()
    for warning in dict.fromkeys(warnings):  # the same broken file is seen on every re-read
        env.warn(warning)
    views = board.views()
    if args.json:
        env.print(json.dumps([agent_json(view) for view in views], indent=2))
        return 0
    if not views:
        env.print(f"no agents have reported yet (status files go to {env.farm.layout.status_dir})")
    for index, view in enumerate(views):
        env.print(format_agent(index, view))
    return 0


SUBCOMMANDS = [Subcommand("status", "show every agent: alive or stale, and what it is doing", add_arguments, run)]
