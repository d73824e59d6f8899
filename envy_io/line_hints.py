"""Second looks at lines that parse but are probably not what the person meant.

A line can be valid and still go nowhere: ``lab3 print('x')`` is addressed to
a host *named* ``lab3`` (the ``*`` was forgotten), ``render('shot02')`` names
a job nobody submitted. Agents would wait for ever, so Envy IO refuses such a
line with the fix; the shell's ``!`` and ``envy-io send --force`` send it anyway.
Misspelt words get "did you mean" from what is known (difflib, no share reads).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from envy.protocol.selectors import HostNamePattern
from envy.render.jobs import Job
from envy_io.lines import InstructionLine
from envy_io.suggest import did_you_mean

# Job names listed in a refusal at most (a lab's share can hold hundreds of jobs).
JOBS_LISTED = 8
# render() arguments that name jobs (envy/render/render_loop.py RenderLoop.start reads the same).
RENDER_TARGET_KEYWORDS = ("job", "folder")


def missing_star(line: InstructionLine, hosts: Sequence[str], pattern: HostNamePattern) -> str | None:
    """Why a line addressed to a lab's name, not its hosts, is refused; None when it is not that.

    Only a one-word selector that matches no agent seen and is the lab part of
    hosts we have seen (``lab3`` beside ``lab3-01``...) is taken for a missing ``*``.
    """
    word = line.selector.text.strip()
    if not hosts or " " in word or any(mark in word for mark in "*@,:"):
        return None
    if any(line.selector.matches(host) for host in hosts):
        return None
    labs = {split[0] for split in (pattern.split(host) for host in hosts) if split}
    if word.casefold() not in labs:
        return None
    return (
        f"no agent is named {word!r}, but {word} is a lab of hosts seen: to send to every host of {word} type "
        f"{word} * {line.call.text} (in the shell, start the line with ! to send it as typed; "
        "envy-io send --force does the same)"
    )


def render_targets(line: InstructionLine) -> list[str]:
    call = line.call
    if call.namespace is not None or call.name != "render":
        return []
    values = [*call.args, *(v for k, v in call.kwargs.items() if k in RENDER_TARGET_KEYWORDS)]
    return [str(v) for v in values]


def unknown_render_jobs(line: InstructionLine, jobs: Collection[Job]) -> str | None:
    """Why ``render('x')`` naming no job is refused (agents would wait for ever); None when every name is known."""
    unknown = [t for t in render_targets(line) if not any(_names_job(t, job) for job in jobs)]
    if not unknown:
        return None
    listed = [job.name for job in jobs if job.state == "active"] or [job.name for job in jobs]
    more = len(listed) - JOBS_LISTED
    shown = ", ".join(listed[:JOBS_LISTED]) + (f" (+{more} more)" if more > 0 else "")
    what = ", ".join(repr(t) for t in unknown)
    hint = did_you_mean(unknown[0], [job.name for job in jobs])
    known = f"known jobs are {shown}" if shown else "no jobs are submitted yet (envy-io submit FOLDER)"
    return f"no job is named {what}: {hint + ' ' if hint else ''}{known}; render() alone renders every active job"


def _names_job(target: str, job: Job) -> bool:
    """The same rule the agents use to pick jobs by name (envy/render/jobs.py select_active)."""
    norm = target.replace("\\", "/").rstrip("/").casefold()
    source = job.source.replace("\\", "/").rstrip("/").casefold()
    if norm in (job.id.casefold(), job.name.casefold(), source) or job.id.startswith(target):
        return True
    # A folder as another OS writes it (P:/proj/shot): agents remap it, so its last part decides here.
    return "/" in norm and bool(source) and source.rsplit("/", 1)[-1] == norm.rsplit("/", 1)[-1]
