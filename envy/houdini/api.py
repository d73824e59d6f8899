"""The Python API a Houdini HDA or shelf tool calls to build and submit cache jobs.

Runs inside Houdini's Python (with Envy installed there, or on its path)::

    from envy.houdini import api

    job = api.job_for_node(node, {"seed": "$NVJ"})          # this HIP file, this node's button
    api.submit(job, wedges=10)                                # ten jobs, seed = 1..10
    api.submit(api.duplicate(job, {"substeps": 4}, name="smoke fine"))

docs/examples/hda_callback.py is a complete button callback. Nothing here
imports ``hou`` at import time, so the module also works outside Houdini
(scripts, tests); the share comes from ``share=``, ``ENVY_SHARE`` or the
user's Envy config, as for envy-io.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envy.config import load_config
from envy.houdini.schema import (
    CacheJob,
    CacheJobError,
    cache_job_from_json,
    duplicate_job,
    load_cache_job,
    save_cache_job,
)
from envy.houdini.submit_cache import CheckedCacheJob, check_cache_job, submit_cache
from envy.houdini.versions import next_version_folder, reserve_version_folder
from envy.platform.host import os_name, user_name
from envy.render.jobs import Job
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout

__all__ = [
    "CacheJob", "CacheJobError", "cache_job", "job_for_node", "duplicate", "check", "submit",
    "load", "save", "next_version_folder", "reserve_version_folder", "share_layout",
]


def cache_job(
    hip: str,
    node: str,
    parms: Mapping[str, Any] | None = None,
    *,
    button: str = "execute",
    output_parm: str | None = None,
    name: str | None = None,
    priority: int = 50,
    max_retries: int | None = None,
    remap: Sequence[str] = (),
    wedges: int = 1,
    comment: str = "",
) -> CacheJob:
    """A validated cache job (the same checks as a job.json file)."""
    return cache_job_from_json(
        {"hip": hip, "node": node, "parms": dict(parms or {}), "button": button, "output_parm": output_parm,
         "name": name, "priority": priority, "max_retries": max_retries, "remap": list(remap), "wedges": wedges,
         "comment": comment},
        "cache job",
    )


def job_for_node(
    node: Any, parms: Mapping[str, Any] | None = None, *, hip: str | None = None, **options: Any
) -> CacheJob:
    """A cache job for a ``hou.Node`` in the current HIP file (give ``hip`` outside Houdini)."""
    if hip is None:
        import hou  # only inside Houdini

        hip = hou.hipFile.path()
    return cache_job(hip, node.path(), parms, **options)


def duplicate(job: CacheJob, parms: Mapping[str, Any] | None = None, *, replace_parms: bool = False,
              **changes: Any) -> CacheJob:
    """A copy of ``job`` with changes: ``parms`` merged in (None removes one), other keys replaced."""
    return duplicate_job(job, parms, replace_parms=replace_parms, **changes)


def share_layout(share: str | os.PathLike[str] | None = None) -> ShareLayout:
    """The Envy share: ``share``, else ``ENVY_SHARE``, else ``share:`` in the user's config."""
    config = load_config(share=str(share) if share is not None else None, user=user_name())
    if not config.share:
        raise CacheJobError("no Envy share: pass share=..., set ENVY_SHARE, or put 'share:' in your Envy config.yaml")
    return ShareLayout(Path(config.share))


def check(job: CacheJob, *, wedges: int | None = None, remap: Sequence[str] = ()) -> CheckedCacheJob:
    """Every check ``submit`` makes, without writing anything (for a "Validate" button)."""
    return check_cache_job(job, wedges=wedges, remap=remap, local_os=os_name())


def submit(
    job: CacheJob,
    *,
    wedges: int | None = None,
    share: str | os.PathLike[str] | None = None,
    priority: int | None = None,
    name: str | None = None,
    paused: bool = False,
    remap: Sequence[str] = (),
    job_file: str | None = None,
) -> Job:
    """Submit ``job`` (``wedges`` jobs numbered 1..N for ``$NVJ``); returns the Envy job written to the share."""
    return submit_cache(share_layout(share), job, wedges=wedges, priority=priority, name=name, paused=paused,
                        remap=remap, job_file=job_file, local_os=os_name(), fs=REAL_FS)


def load(path: str | os.PathLike[str]) -> CacheJob:
    return load_cache_job(Path(path))


def save(job: CacheJob, path: str | os.PathLike[str]) -> None:
    save_cache_job(job, Path(path), REAL_FS)
