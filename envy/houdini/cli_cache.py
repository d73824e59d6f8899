"""``envy-io cache job.json [--wedges 10]``: the command behind the CLI, on parsed values.

envy_io parses the command line and calls ``run_cache``; a bad job raises
``CacheJobError`` (a ``JobError``: one line naming the file and the key; the
CLI turns it into a usage error, exit 2) and nothing is written then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from envy.houdini.schema import CacheJobError, load_cache_job
from envy.houdini.submit_cache import check_cache_job, submit_cache
from envy.platform.host import os_name
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout


def run_cache(
    share: ShareLayout | str | Path | None,
    job_json: str | Path,
    wedges: int | None = None,
    *,
    priority: int | None = None,
    name: str | None = None,
    paused: bool = False,
    remap: Sequence[str] = (),
    local_remap: Sequence[str] = (),
    check_only: bool = False,
    say: Callable[[str], None] = print,
    fs: ShareFS,
    after: Sequence[str] = (),
) -> int:
    """Submit (or with ``check_only``, only check) the cache job in ``job_json``; returns the exit code.

    ``remap``: ``--remap`` rules, stored in the job; ``local_remap``: this
    machine's config rules, used only to find the HIP file and version folder
    from here. ``share`` may be None with ``check_only``.
    """
    job = load_cache_job(job_json)
    if check_only:
        checked = check_cache_job(job, wedges=wedges, priority=priority, remap=remap, job_file=str(job_json),
                                  local_os=os_name(), local_remap=local_remap)
        version = f", a new version folder in {checked.version_root}" if checked.version_root else ""
        say(f"{job_json}: OK: {checked.wedges} cache job{'s' if checked.wedges != 1 else ''} of {job.node} "
            f"in {job.hip}{version} (nothing submitted)")
        return 0
    if share is None:
        raise CacheJobError("no Envy share given")
    layout = share if isinstance(share, ShareLayout) else ShareLayout(Path(share))
    record = submit_cache(layout, job, wedges=wedges, priority=priority, name=name, paused=paused, remap=remap,
                          job_file=str(job_json), fs=fs, local_os=os_name(), local_remap=local_remap,
                          after=after)
    count = record.settings["wedges"]
    version = f" into {record.output}" if record.output else ""
    say(f"submitted {record.id}: {count} cache job{'s' if count != 1 else ''} of {job.node} "
        f"in {job.hip}{version}{' (paused)' if paused else ''}")
    return 0
