"""``envy-io cache job.json [--wedges N]``: submit a Houdini cache job (docs/usd-and-houdini.md)."""

from __future__ import annotations

import argparse

from envy.houdini.cli_cache import run_cache
from envy.render.jobs import JobError
from envy_io.errors import FarmError, UsageError
from envy_io.registry import CommandEnv, Subcommand, count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="the cache job file (JSON): hip, node, button, parms")
    parser.add_argument("--wedges", type=count(1, 10_000), default=None, help="N jobs numbered 1..N for $NVJ")
    parser.add_argument("--priority", type=count(0, 100), default=None, help="0-100 (default: the file's, else 50)")
    parser.add_argument("--name", help="a name for the job")
    parser.add_argument(
        "--remap", action="append", default=[], metavar="FROM,TO", help="path remap stored in the job (repeatable)"
    )
    parser.add_argument("--paused", action="store_true", help="submit paused; start with: envy-io resume JOB")
    parser.add_argument("--check", action="store_true", help="check the job and its HIP file; submit nothing")
    parser.add_argument("--after", action="append", default=[], metavar="JOB[,JOB]",
                        help="start only when these jobs are complete (names or ids)")


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    try:
        return run_cache(
            None if args.check else env.farm.layout, args.job, args.wedges, priority=args.priority, name=args.name,
            paused=args.paused, remap=args.remap, local_remap=env.config.remap, check_only=args.check,
            say=env.print, fs=env.fs, after=args.after,
        )
    except JobError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise FarmError(f"cannot write the job: {exc}") from None


SUBCOMMANDS = [Subcommand("cache", "submit a Houdini cache job (JSON), --wedges N for N jobs", add_arguments, run)]
