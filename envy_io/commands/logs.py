"""``envy-io logs HOST [-n N]``: the end of an agent's log."""

from __future__ import annotations

import argparse

from envy_io.agent_logs import tail_agent_log
from envy_io.registry import CommandEnv, Subcommand, count

DEFAULT_LINES = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", metavar="HOST", help="the agent's host name, e.g. lab3-03")
    parser.add_argument("-n", "--lines", type=count(1, 100_000), default=DEFAULT_LINES, metavar="N",
                        help=f"how many lines (default {DEFAULT_LINES})")


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    for line in tail_agent_log(env.farm.layout, args.host, args.lines):
        env.print(line)
    return 0


SUBCOMMANDS = [Subcommand("logs", "show the end of an agent's log", add_arguments, run)]
