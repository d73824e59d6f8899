"""``envy-io forget HOST``: take a dead agent off the lists (status, monitor, web monitor, completion).

A lab keeps machines that are gone for good (re-imaged, renamed, in the
skip): their last status file stays on the share for ever. Forgetting removes
exactly that file and this machine's saved sightings of the host; its logs,
its frames and everything else are kept. An agent that starts again under that
name writes a new status file and is back on the lists. A live agent is
refused (its next heartbeat would bring it straight back, and someone may be
using it) unless ``--force``.
"""

from __future__ import annotations

import argparse

from envy.share.names import is_junk
from envy_io.agents import ALIVE, CHECKING, SUSPECT, AgentView
from envy_io.errors import FarmError, UsageError
from envy_io.registry import CommandEnv, Subcommand
from envy_io.suggest import did_you_mean


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hosts", nargs="+", metavar="HOST", help="the agent's host name, as status shows it")
    parser.add_argument("--force", action="store_true", help="forget it even though it looks alive")


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    farm = env.farm
    board = farm.board
    for warning in board.refresh():
        env.warn(warning)
    views = {v.status.host.lower(): v for v in board.views()}
    chosen = [_known(host, views) for host in args.hosts]  # every name checked before anything is removed
    if any(v.verdict == CHECKING for v in chosen):
        board.wait_for_heartbeats(board.default_wait())  # one heartbeat of theirs decides
        views = {v.status.host.lower(): v for v in board.views()}
        chosen = [views[v.status.host.lower()] for v in chosen]
    if not args.force:
        for view in chosen:
            if view.verdict in (ALIVE, CHECKING, SUSPECT):
                raise UsageError(
                    f"{view.status.host} is {'alive' if view.verdict == ALIVE else 'maybe alive'} "
                    f"(state {view.status.state}): only stale agents can be forgotten; stop it first "
                    f"({view.status.host} quit()) or use --force"
                )
    for view in chosen:
        removed = _remove_status_file(env, view)
        board.forget(view.status.host)
        env.print(
            f"forgot {view.status.host}: removed {removed} and this machine's sightings of it; "
            f"its logs and frames are kept, and it is listed again if its agent starts"
        )
    board.save()
    return 0


def _known(host: str, views: dict[str, AgentView]) -> AgentView:
    view = views.get(host.strip().lower())
    if view is None:
        names = sorted(v.status.host for v in views.values())
        hint = did_you_mean(host, names)
        known = f"agents listed are {', '.join(names)}" if names else "no agents are listed"
        raise UsageError(f"no agent named {host!r}: {hint + ' ' if hint else ''}{known}")
    return view


def _remove_status_file(env: CommandEnv, view: AgentView) -> str:
    """Remove the host's status file under whatever case it was written in (SMB and macOS ignore case)."""
    layout, fs = env.farm.layout, env.farm.fs
    wanted = f"{view.status.host.lower()}.json"
    try:
        names = [n for n in fs.listdir(layout.status_dir) if not is_junk(n) and n.lower() == wanted]
        for name in names:
            fs.unlink(layout.status_dir / name)
    except FileNotFoundError:
        names = []  # removed meanwhile: nothing left to remove
    except OSError as exc:
        raise FarmError(f"cannot remove the status file of {view.status.host}: {exc}") from None
    where = layout.status_dir.name
    return ", ".join(f"{where}/{n}" for n in names) or f"nothing ({where}/{wanted} was already gone)"


SUBCOMMANDS = [Subcommand("forget", "take a dead agent off the lists (removes its status file only)",
                          add_arguments, run)]
