"""Render jobs from Envy IO: ``submit``, ``jobs``, ``pause``, ``resume``, ``cancel``, ``priority``, ``reset``,
``archive``.

Only Envy IO writes job files; agents read them. The actions themselves are
in envy_io/job_actions.py, shared with the web monitor; each validates
everything before it writes, so bad input changes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from envy.platform.host import account_name, os_name
from envy.render.dependencies import DependencyState, shown_state
from envy.render.frame_report import frame_rows
from envy.render.job_state import JobProgress, progress, summary_state
from envy.render.jobs import MAX_LIMIT_S, Job, JobError, list_jobs
from envy.render.overview import JobSummary, summarize
from envy.render.profiles import ProfileError, load_profiles
from envy.render.remap import PathRemap, RemapError
from envy.render.submit import AlreadySubmitted, SubmitRequest, submit
from envy_io import job_actions
from envy_io.errors import FarmError, UsageError
from envy_io.monitor import format_duration
from envy_io.registry import CommandEnv, Subcommand, count


def _profiles(env: CommandEnv):  # type: ignore[no-untyped-def]
    try:
        return load_profiles([Path(p) for p in env.config.profiles])
    except ProfileError as exc:
        raise UsageError(str(exc)) from None


def _remap(env: CommandEnv, extra: list[str] | None = None) -> PathRemap:
    try:
        return PathRemap.parse([*env.config.remap, *(extra or [])])
    except RemapError as exc:
        raise UsageError(str(exc)) from None


# -- submit --------------------------------------------------------------------------------
def add_submit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a folder of per-frame scene files, or a scene holding every frame")
    parser.add_argument("--frames", help="frame range A-B for a scene that holds every frame (default: a .blend's "
                        "own range; a still .pov needs none)")
    parser.add_argument("--chunk", type=count(1, 100_000), default=1, help="frames per task for --frames (default 1)")
    parser.add_argument("--renderer", help="renderer profile (default: by file extension)")
    parser.add_argument("--priority", type=count(0, 100), default=50, help="0-100, higher first (default 50)")
    parser.add_argument("--output", help="output folder (default: the scene's own, e.g. a .blend's output path "
                        "and format)")
    parser.add_argument("--name", help="a name for the job (default: from the folder)")
    parser.add_argument(
        "--retries", type=count(0, 100), default=None, help="retries before a frame fails (default: config)"
    )
    parser.add_argument(
        "--remap",
        action="append",
        default=[],
        metavar="FROM,TO",
        help="path remap for other OSes, e.g. 'P:/,/mnt/renders/' (repeatable)",
    )
    parser.add_argument("--paused", action="store_true", help="submit paused; start with: envy-io resume JOB")
    parser.add_argument("--timeout", type=count(0, MAX_LIMIT_S), default=None, metavar="SECONDS",
                        help="kill a render running longer (default: the farm's render_timeout; at most its maximum)")
    parser.add_argument("--stall", type=count(0, MAX_LIMIT_S), default=None, metavar="SECONDS",
                        help="kill a render printing nothing for this long (default: the farm's render_stall)")
    parser.add_argument("--delegate", help="USD: the Hydra delegate for husk, e.g. BRAY_HdKarma (makes a husk job)")
    parser.add_argument("--tiles", help="USD: split each frame into XxY tiles, e.g. 3x3")
    parser.add_argument("--pattern", help="USD: only the files matching this name pattern, e.g. 'shot.*.usd'")
    parser.add_argument("--tile-suffix", help="USD: husk's tile suffix (default _tile%%02d)")
    parser.add_argument("--json", action="store_true", help="print the job as JSON")
    parser.add_argument("--after", action="append", default=[], metavar="JOB[,JOB]",
                        help="start only when these jobs are complete (names or ids), e.g. --after shot010-cache")
    parser.add_argument("--again", action="store_true",
                        help="submit a source that is already a job as a second job (otherwise refused)")


def run_submit(args: argparse.Namespace, env: CommandEnv) -> int:
    farm = env.farm
    remap = _remap(env, args.remap)
    from envy.usd.cli_submit import looks_like_usd_folder

    if (
        args.delegate
        or args.tiles
        or ((args.renderer or "husk").lower() == "husk" and looks_like_usd_folder(remap.apply(args.source, os_name())))
    ):
        from envy.usd.submit_usd import submit_usd_from_cli

        try:
            job = submit_usd_from_cli(farm.layout, args, remap, farm.fs)
        except (JobError, RemapError) as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise FarmError(f"cannot write the job: {exc}") from None
    else:
        request = SubmitRequest(
            source=args.source,
            frames=args.frames,
            chunk=args.chunk,
            renderer=args.renderer,
            priority=args.priority,
            output=args.output,
            name=args.name,
            max_retries=args.retries,
            remap=args.remap,
            paused=args.paused,
            again=args.again,
            renderers=env.config.renderers,
            after=args.after,
            timeout=args.timeout,
            stall=args.stall,
            # $USER is anyone's to set; under StrictModes the job says who the OS says submitted it.
            submitter=account_name() if env.config.strict_modes else None,
        )
        try:
            try:
                job = submit(farm.layout, request, _profiles(env), farm.fs, local_os=os_name() if args.remap else None)
            except AlreadySubmitted as exc:
                # The shell asks; the CLI (no one to ask) needs --again.
                if env.ask is None or not env.ask(f"{exc}. Submit it again as a new job?"):
                    raise
                request = dataclasses.replace(request, again=True)
                job = submit(farm.layout, request, _profiles(env), farm.fs, local_os=os_name() if args.remap else None)
        except (JobError, RemapError) as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise FarmError(f"cannot write the job: {exc}") from None
    if args.json:
        env.print(json.dumps(job.to_json(), indent=1))
        return 0
    summary = summarize(farm.layout, job, remap, farm.fs, reasons=False)
    env.print(
        f"submitted {job.id}: {job.name} ({job.renderer}, {summary.total} "
        f"{'tasks' if job.kind == 'tasks' else 'frames'}, "
        f"priority {job.priority}{', paused' if job.state == 'paused' else ''})"
    )
    if isinstance(job.settings.get("scene_output"), str):  # the .blend's own output is kept (issue 11 §4)
        env.print(f"frames {job.frames}, written as the scene says: {job.settings['scene_output']} "
                  f"({job.settings.get('scene_format')})")
    env.print("agents render it after:  SELECTOR render()   e.g.  lab3 * render()")
    return 0


# -- jobs --------------------------------------------------------------------------------------
def add_jobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", nargs="?", help="show only this job (id or its start, name, or submitted folder)")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.add_argument("--all", action="store_true", help="include cancelled and archived jobs")
    parser.add_argument("--frames", action="store_true",
                        help="with JOB: list its frames (state, host, attempts, time, reason)")


def job_rows(env: CommandEnv, include_hidden: bool = False) -> list[tuple[JobSummary, JobProgress]]:
    """Every job's summary and progress (state, counts, elapsed, ETA), as ``jobs`` and ``jobs --json`` show them."""
    farm = env.farm
    jobs, warnings = list_jobs(farm.layout, farm.fs)
    for w in warnings:
        env.warn(w)
    rows = []
    for job in jobs:
        if not include_hidden and (job.archived or job.state == "cancelled"):
            continue
        summary = summarize(farm.layout, job, job_actions.job_remap(farm, job), farm.fs)
        rows.append((summary, progress(summary)))
    return with_dependencies(env, jobs, rows)


def with_dependencies(
    env: CommandEnv, jobs: list[Job], rows: list[tuple[JobSummary, JobProgress]]
) -> list[tuple[JobSummary, JobProgress]]:
    """An active job that waits for others shows why instead (``waiting for X``, ``held: X failed``)."""
    if not any(s.job.after for s, _ in rows):
        return rows
    farm = env.farm
    states: dict[str, DependencyState] = {s.job.id: (s.job.name, p.state) for s, p in rows}
    by_id = {j.id: j for j in jobs}
    for s, _ in rows:
        for dep_id in s.job.after:
            if dep_id not in states and dep_id in by_id:  # a hidden (archived) dependency
                dep = by_id[dep_id]
                states[dep_id] = (dep.name, summary_state(summarize(farm.layout, dep, job_actions.job_remap(farm, dep),
                                                                    farm.fs, reasons=False)))
    return [(s, dataclasses.replace(p, state=shown_state(s.job, p.state, states))) for s, p in rows]


def run_frames(job: Job, args: argparse.Namespace, env: CommandEnv) -> int:
    farm = env.farm
    try:
        rows = frame_rows(farm.layout, job, job_actions.job_remap(farm, job), farm.fs)
    except OSError as exc:
        raise FarmError(f"cannot list the frames of {job.name}: {exc.strerror or exc}") from None
    if args.json:
        env.print(json.dumps([r.to_json() for r in rows], indent=1))
        return 0
    env.print(f"{job.name} ({job.id}): {len(rows)} frame(s)")
    env.print(f"{'FRAME':<28} {'STATE':<8} {'HOST':<16} {'TRIES':>5} {'TIME':>8}  REASON")
    for r in rows:
        env.print(f"{r.item:<28} {r.state:<8} {r.host[:16]:<16} {r.attempts:>5} {format_duration(r.seconds):>8}  "
                  f"{r.reason}")
    return 0


def run_jobs(args: argparse.Namespace, env: CommandEnv) -> int:
    if args.frames and not args.job:
        raise UsageError("--frames needs a job: envy-io jobs JOB --frames")
    if args.job:
        named = job_actions.jobs_named(env.farm, args.job)
        if args.frames:
            for job in named:
                run_frames(job, args, env)
            return 0
        ids = {j.id for j in named}
        rows = [r for r in job_rows(env, include_hidden=True) if r[0].job.id in ids]
    else:
        rows = job_rows(env, include_hidden=args.all)
    if args.json:
        env.print(
            json.dumps(
                [
                    {
                        **s.to_json(),
                        **p.to_json(),
                        "job_state": s.job.state,
                        "user": s.job.created_by,
                        "archived": s.job.archived,
                        "after": s.job.after,
                    }
                    for s, p in rows
                ],
                indent=1,
            )
        )
        return 0
    if not rows:
        env.print("no jobs (submit one with: envy-io submit FOLDER)")
        return 0
    env.print(
        f"{'JOB':<36} {'STATE':<22} {'USER':<10} {'PROGRESS':<22} {'DONE':>6} {'RUN':>4} {'FAIL':>4} {'PEND':>5} "
        f"{'ELAPSED':>8} {'ETA':>8}  NAME"
    )
    for s, p in rows:
        j = s.job
        env.print(
            f"{j.id:<36} {p.state:<22} {j.created_by[:10]:<10} {p.bar():<22} {s.done:>6} {s.running:>4} {s.failed:>4} "
            f"{s.pending:>5} {format_duration(p.elapsed_s):>8} {format_duration(p.eta_s):>8}  {j.name}"
        )
        if s.error:
            env.print(f"    ! {s.error}")
        for item, reason in list(s.failures.items())[:10]:
            env.print(f"    failed {item}: {reason}")
        if len(s.failures) > 10:
            env.print(f"    ... and {len(s.failures) - 10} more failed")
    return 0


# -- pause / resume / cancel / priority / archive --------------------------------------------------
def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="job id (or its start), name, or submitted folder")


def _set_state(state: str):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace, env: CommandEnv) -> int:
        for line in job_actions.set_state(env.farm, args.job, state):
            env.print(line)
        return 0

    return run


def add_priority(parser: argparse.ArgumentParser) -> None:
    add_target(parser)
    parser.add_argument("priority", type=count(0, 100), help="0-100, higher renders first")


def run_priority(args: argparse.Namespace, env: CommandEnv) -> int:
    for line in job_actions.set_priority(env.farm, args.job, args.priority):
        env.print(line)
    return 0


def add_archive(parser: argparse.ArgumentParser) -> None:
    add_target(parser)
    parser.add_argument("--undo", action="store_true", help="show an archived job in the lists again")


def run_archive(args: argparse.Namespace, env: CommandEnv) -> int:
    for line in job_actions.set_archived(env.farm, args.job, not args.undo):
        env.print(line)
    return 0


# -- reset ---------------------------------------------------------------------------------------
def add_delete(parser: argparse.ArgumentParser) -> None:
    add_target(parser)
    parser.add_argument("--with-outputs", action="store_true",
                        help="also delete the images the job's frames wrote (it lists them and asks first)")
    parser.add_argument("--yes", action="store_true", help="with --with-outputs: do not ask (scripts)")


def run_delete(args: argparse.Namespace, env: CommandEnv) -> int:
    if args.yes and not args.with_outputs:
        raise UsageError("--yes only goes with --with-outputs (deleting a job's Envy files never asks)")
    confirm = (lambda _question: True) if args.yes else _asker(env)
    for line in job_actions.delete(env.farm, args.job, with_outputs=args.with_outputs, confirm=confirm):
        env.print(line)
    return 0


def _asker(env: CommandEnv) -> Callable[[str], bool] | None:
    """The shell's question; on a terminal the CLI asks too; from a script it cannot (None)."""
    if env.ask is not None:
        return env.ask
    if not sys.stdin.isatty():
        return None

    def ask(question: str) -> bool:
        try:
            return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
        except EOFError:
            return False

    return ask


def add_reset(parser: argparse.ArgumentParser) -> None:
    add_target(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--failed", action="store_true", help="re-render the failed frames")
    which.add_argument("--all", action="store_true", help="re-render every completed and failed frame")
    which.add_argument("--frames", metavar="LIST", help="re-render these done or failed frames, e.g. 7,10-12")


def run_reset(args: argparse.Namespace, env: CommandEnv) -> int:
    frames = job_actions.parse_frames(args.frames) if args.frames else None
    states = ["failed"] if args.failed else ["failed", "done"]
    for line in job_actions.reset(env.farm, args.job, states, frames=frames):
        env.print(line)
    return 0


SUBCOMMANDS = [
    Subcommand(
        "submit", "register a render job (a folder of frame files, or a scene with --frames)", add_submit, run_submit
    ),
    Subcommand("jobs", "list jobs with done / running / failed / pending counts", add_jobs, run_jobs),
    Subcommand("pause", "agents take no new frames of a job", add_target, _set_state("paused")),
    Subcommand("resume", "let agents take frames of a paused job again", add_target, _set_state("active")),
    Subcommand("cancel", "cancel a job (its files are kept)", add_target, _set_state("cancelled")),
    Subcommand("priority", "change a job's priority (0-100)", add_priority, run_priority),
    Subcommand(
        "reset",
        "re-render failed (--failed), all (--all) or some (--frames 7,10-12) frames of a job",
        add_reset,
        run_reset,
    ),
    Subcommand(
        "delete", "delete a job's Envy files (job file, logs); its scenes are kept, its images too unless "
        "--with-outputs", add_delete, run_delete
    ),
    Subcommand(
        "archive", "hide a job from the lists (its files are kept; --undo shows it again)", add_archive, run_archive
    ),
]
