"""``envy-io send LINE [LINE...]``: check every line, then write them all (or none)."""

from __future__ import annotations

import argparse

from envy_io.registry import CommandEnv, Subcommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "lines", nargs="+", metavar="LINE",
        help="SELECTOR COMMAND, e.g. \"lab3 03 print('hi')\" or \"* NV.say_hello('class')\"",
    )


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    farm = env.farm
    checked = farm.check_lines(args.lines)  # all-or-nothing: raises before anything is written
    warning = farm.nv_warning(checked)
    if warning:
        env.warn(warning)
    result = farm.send(checked)
    for problem in result.skipped:
        env.warn(problem)
    if result.stamped:
        env.warn(f"stamped {len(result.stamped)} hand-written line(s) in {farm.layout.instructions.name}")
    for instruction in result.sent:
        env.print(f"{instruction.id} {instruction.text}")
    return 0


SUBCOMMANDS = [Subcommand("send", "send commands to agents (all lines or none)", add_arguments, run, in_shell=False)]
