"""``envy-io monitor [--once]``: live progress of every host and job."""

from __future__ import annotations

import argparse

from envy.render.remap import PathRemap
from envy_io.agents import observation_cache
from envy_io.errors import UsageError
from envy_io.job_notices import notice_watcher
from envy_io.monitor import MonitorModel, run_monitor
from envy_io.registry import CommandEnv, Subcommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="print one snapshot and exit (for scripts)")
    parser.add_argument("--json", action="store_true", help="with --once: the agents rows and the jobs as JSON")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    if args.json and not args.once:
        raise UsageError("--json needs --once: a live monitor redraws a screen, --once --json prints one snapshot")
    farm = env.farm
    model = MonitorModel(farm.layout, env.config.dead_after, PathRemap.parse(list(env.config.remap)), farm.fs,
                         cache=observation_cache(farm.state_dir))
    if args.once:
        return run_monitor(model, once=True, stream=env.out, as_json=args.json)
    # The screen is redrawn in place: a finished job of yours shows as a desktop toast
    # (or, on a plain stream, a line between the snapshots).
    say = (lambda _text: None) if env.out.isatty() else env.print
    with notice_watcher(farm.layout, farm.fs, farm.user, max(2.0, env.config.heartbeat), say,
                        env.config.notify_desktop):
        return run_monitor(model, once=False, interval=max(0.2, args.interval), stream=env.out)


SUBCOMMANDS = [
    Subcommand("monitor", "live progress of hosts and jobs (--once: one snapshot)", add_arguments, run, in_shell=False)
]
