"""``envy-io monitor [--once]``: live progress of every host and job."""

from __future__ import annotations

import argparse

from envy.render.remap import PathRemap
from envy_io.agents import observation_cache
from envy_io.monitor import MonitorModel, run_monitor
from envy_io.registry import CommandEnv, Subcommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="print one snapshot and exit (for scripts)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    farm = env.farm
    model = MonitorModel(farm.layout, env.config.dead_after, PathRemap.parse(list(env.config.remap)), farm.fs,
                         cache=observation_cache(farm.state_dir))
    return run_monitor(model, once=args.once, interval=max(0.2, args.interval), stream=env.out)


SUBCOMMANDS = [
    Subcommand("monitor", "live progress of hosts and jobs (--once: one snapshot)", add_arguments, run, in_shell=False)
]
