"""``envy-io logs HOST [-n N]``: the end of an agent's log; ``envy-io log JOB FRAME [-f]``: a frame's logs."""

from __future__ import annotations

import argparse
import time

from envy.render.claims import ItemName, ItemPattern
from envy.render.frame_report import AttemptLog, attempt_logs, find_items, read_log
from envy.render.overview import work_folder
from envy_io import job_actions
from envy_io.agent_logs import tail_agent_log
from envy_io.errors import FarmError, UsageError
from envy_io.registry import CommandEnv, Subcommand, count

DEFAULT_LINES = 40
FOLLOW_POLL_S = 0.5  # a log on the share is polled (§1.10: no change events from other machines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", metavar="HOST", help="the agent's host name, e.g. lab3-03")
    parser.add_argument("-n", "--lines", type=count(1, 100_000), default=DEFAULT_LINES, metavar="N",
                        help=f"how many lines (default {DEFAULT_LINES})")


def run(args: argparse.Namespace, env: CommandEnv) -> int:
    for line in tail_agent_log(env.farm.layout, args.host, args.lines):
        env.print(line)
    return 0


# -- log JOB FRAME ----------------------------------------------------------------------------
def add_frame_log(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="job id (or its start), name, or submitted folder")
    parser.add_argument("frame", help="frame number (7), item (shot.0007) or file name")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing as the frame renders, until it is done or failed (Ctrl-C stops)")


def _header(a: AttemptLog) -> str:
    return f"--- attempt {a.attempt} on {a.host} ({a.path.name}) ---"


def run_frame_log(args: argparse.Namespace, env: CommandEnv) -> int:
    farm = env.farm
    jobs = job_actions.jobs_named(farm, args.job)
    if len(jobs) > 1:
        raise UsageError(f"{args.job!r} names {len(jobs)} jobs ({', '.join(j.id for j in jobs[:5])}); give one id")
    job = jobs[0]
    folder = work_folder(farm.layout, job, job_actions.job_remap(farm, job))
    pattern = ItemPattern(job.extensions)

    def items() -> list[ItemName]:
        try:
            return find_items(farm.fs.listdir(folder), pattern, args.frame)
        except OSError as exc:
            raise FarmError(f"cannot list {folder}: {exc.strerror or exc}") from None

    found = items()
    if not found:
        raise UsageError(f"job {job.name} has no frame {args.frame!r} (give a frame number like 7, or an item "
                         f"name; see: envy-io jobs {job.name} --frames)")
    base = found[0].base
    offsets: dict[str, int] = {}

    def show_new() -> bool:
        """Print what the logs gained since last time; True if anything was printed."""
        printed = False
        for a in attempt_logs(farm.layout, job, base, farm.fs):
            key = a.path.name
            try:
                text, end = read_log(a.path, farm.fs, start=offsets.get(key, 0))
            except OSError as exc:
                env.warn(f"cannot read {a.path}: {exc}")
                offsets[key] = offsets.get(key, 0)
                continue
            if key not in offsets:
                env.print(_header(a))
            offsets[key] = end
            if text:
                env.out.write(text if text.endswith("\n") else text + "\n")
                env.out.flush()
                printed = True
        return printed

    show_new()
    if not offsets and not args.follow:
        env.print(f"{found[0].original}: no attempt yet ({found[0].state})")
    if not args.follow:
        return 0
    try:
        while True:
            states = {i.state for i in items() if i.base.casefold() == base.casefold()}
            finished = bool(states) and states <= {"done", "failed"}
            show_new()
            if finished:
                show_new()  # the footer and reason written just before the rename
                env.print(f"{found[0].original}: {'done' if 'done' in states else 'failed'}")
                return 0
            time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:
        return 0


SUBCOMMANDS = [
    Subcommand("logs", "show the end of an agent's log", add_arguments, run),
    Subcommand("log", "print (or follow with -f) a frame's log, every attempt host by host", add_frame_log,
               run_frame_log),
]
