"""How long one render may run, and stay silent, before it is killed (Must-hold 8).

A job may ask for its own limits (``envy-io submit --timeout S --stall S``); the
farm config gives the defaults (``render_timeout``, ``render_stall``) and the
maxima (``render_timeout_max``, ``render_stall_max``). The job file is written by
whoever can write the share, so its ask is only an ask: it can shorten a limit,
never lift it past the farm's maximum, and "no limit" (0) means the maximum
when there is one. 0 everywhere (the default) means no limit: renders can be long.
"""

from __future__ import annotations

from dataclasses import dataclass

from envy.config import Config
from envy.render.jobs import Job


@dataclass(frozen=True)
class RenderLimits:
    timeout_s: float = 0.0  # 0: none
    stall_s: float = 0.0  # 0: none


def _capped(asked: float | None, default: float, maximum: float) -> float:
    value = default if asked is None else float(asked)
    if maximum > 0 and (value <= 0 or value > maximum):
        return maximum
    return max(value, 0.0)


def render_limits(job: Job, config: Config) -> RenderLimits:
    """The limits for one render of ``job`` on this agent."""
    return RenderLimits(
        _capped(job.timeout, config.render_timeout, config.render_timeout_max),
        _capped(job.stall, config.render_stall, config.render_stall_max),
    )
