"""``envy-io send LINE [LINE...]``: check every line, then write them all (or none)."""

from __future__ import annotations

import argparse
import json

from envy_io.registry import CommandEnv, Subcommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "lines", nargs="+", metavar="LINE",
        help="SELECTOR COMMAND, e.g. \"lab3 03 print('hi')\" or \"* NV.say_hello('class')\"",
    )
    parser.add_argument(
        "--force", action="store_true",
        help="send lines that would reach nobody as typed (a lab name without *, render() of an unknown job)",
    )
    parser.add_argument("--json", action="store_true", help="print the ids and lines sent as JSON")


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    farm = env.farm
    if not args.force:
        for problem in farm.board.refresh():  # the hosts seen decide what "reaches nobody" means
            env.warn(problem)
    checked = farm.check_lines(args.lines, force=args.force)  # all-or-nothing: raises before anything is written
    warning = farm.nv_warning(checked)
    if warning:
        env.warn(warning)
    result = farm.send(checked)
    for problem in result.skipped:
        env.warn(problem)
    if result.stamped:
        env.warn(f"stamped {len(result.stamped)} hand-written line(s) in {farm.layout.instructions.name}")
    if args.json:
        sent = [{"id": i.id, "line": i.text, "selector": i.selector, "command": i.command} for i in result.sent]
        env.print(json.dumps({"sent": sent, "skipped": list(result.skipped)}, indent=2))
        return 0
    for instruction in result.sent:
        env.print(f"{instruction.id} {instruction.text}")
    return 0


SUBCOMMANDS = [Subcommand("send", "send commands to agents (all lines or none)", add_arguments, run, in_shell=False)]
