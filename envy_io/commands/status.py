"""``envy-io status``: one line per agent, alive or stale, judged by watching heartbeats.

It answers within a second however many machines are off: agents already
known stale (the saved sightings of earlier runs and of the monitor, a last
status that says ``stopped``) are shown stale at once and never waited for.
Agents not seen beating yet are shown ``(checking)``; outside the shell the
command then keeps watching them for one heartbeat of their own and prints a
line for each verdict it settles. ``--json`` and ``--wait`` answer once, after
that watch.
"""

from __future__ import annotations

import argparse
import json

from envy_io.agents import ALIVE, CHECKING, MAX_DEFAULT_WAIT_S, AgentBoard, agent_json, format_agent
from envy_io.registry import CommandEnv, Subcommand, seconds

# The first answer comes after at most this long (one re-read of agents being checked).
QUICK_ANSWER_S = 0.7


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of lines")
    parser.add_argument(
        "--wait", type=seconds, default=None, metavar="S",
        help="watch agents not yet seen alive this long before answering "
        f"(default: answer at once, then settle them within their heartbeat + 1 s, at most {MAX_DEFAULT_WAIT_S:g} s)",
    )


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    board = env.farm.board
    warnings = board.refresh()
    try:
        if args.wait is not None or args.json:
            warnings += board.wait_for_heartbeats(board.default_wait() if args.wait is None else args.wait)
            _report(env, board, warnings, args.json)
            return 0
        warnings += board.wait_for_heartbeats(min(QUICK_ANSWER_S, board.default_wait()))
        _report(env, board, warnings, False)
        _settle(env, board)
    finally:
        board.save()
    return 0


def _report(env: CommandEnv, board: AgentBoard, warnings: list[str], as_json: bool) -> None:
    for warning in dict.fromkeys(warnings):  # the same broken file is seen on every re-read
        env.warn(warning)
    views = board.views()
    if as_json:
        env.print(json.dumps([agent_json(view) for view in views], indent=2))
        return
    if not views:
        env.print(f"no agents have reported yet (status files go to {env.farm.layout.status_dir})")
    for index, view in enumerate(views):
        env.print(format_agent(index, view))


def _settle(env: CommandEnv, board: AgentBoard) -> None:
    """Watch the agents still being checked for a heartbeat of theirs; one line per verdict settled."""
    checking = {v.status.host for v in board.views() if v.verdict == CHECKING}
    if not checking:
        return
    if env.in_shell:  # the shell's watcher keeps looking; never hold the prompt
        env.print(f"checking {', '.join(sorted(checking))}: not seen beating yet (type status again to see)")
        return
    board.wait_for_heartbeats(board.default_wait())
    for view in board.views():
        if view.status.host in checking:
            settled = "alive" if view.verdict == ALIVE else f"{view.verdict}: no heartbeat seen"
            env.print(f"{view.status.host}: {settled}")


SUBCOMMANDS = [Subcommand("status", "show every agent: alive or stale, and what it is doing", add_arguments, run)]
