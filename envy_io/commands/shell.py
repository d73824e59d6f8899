"""``envy-io shell`` (or ``envy-io`` alone): the interactive shell."""

from __future__ import annotations

import argparse

from envy_io.registry import CommandEnv, Subcommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    from envy_io.shell import run_shell  # prompt_toolkit is loaded only for the shell

    farm = env.farm
    return run_shell(farm.layout, farm.config, fs=farm.fs, user=farm.user, farm=farm, debug=env.debug)


SUBCOMMANDS = [Subcommand("shell", "the interactive shell (the default)", add_arguments, run, in_shell=False)]
