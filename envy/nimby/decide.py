"""From one reading of the machine to what the renders should do now."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from envy.nimby.settings import NimbySettings
from envy.platform.idle import MachineUse

RUN, PAUSE, STOP, NICE = "run", "pause", "stop", "nice"
SOMEONE_AT_THE_MACHINE = "someone is using this machine"

# What the status line says for each action, e.g. "paused: someone is using this machine".
_STATUS_VERB = {PAUSE: "paused", STOP: "not rendering", NICE: "rendering at the lowest priority"}


@dataclass(frozen=True)
class Decision:
    action: str  # RUN, PAUSE, STOP or NICE
    reason: str = ""  # why not RUN, in the user's words

    @property
    def takes_new_frames(self) -> bool:
        return self.action in (RUN, NICE)

    @property
    def status_text(self) -> str:
        """The status and monitor line; empty while rendering normally."""
        return f"{_STATUS_VERB[self.action]}: {self.reason}" if self.action != RUN else ""


def in_use_reason(settings: NimbySettings, use: MachineUse) -> str:
    """Why the machine counts as in use, or "" when it does not."""
    if use.input_idle_s is not None and use.input_idle_s < settings.idle_after_s:
        return SOMEONE_AT_THE_MACHINE
    if settings.users_in_use and use.other_users:
        return f"{SOMEONE_AT_THE_MACHINE} ({', '.join(use.other_users[:3])} signed in)"
    if settings.cpu_busy_percent > 0 and use.others_cpu_percent is not None \
            and use.others_cpu_percent > settings.cpu_busy_percent:
        return f"{SOMEONE_AT_THE_MACHINE} (other programs use {use.others_cpu_percent:.0f}% of the CPU)"
    return ""


def decide(settings: NimbySettings, use: MachineUse, now: dt.time) -> Decision:
    """Outside the render hours nothing renders; in use, ``when_in_use`` says what happens."""
    if settings.render_hours is not None and not settings.render_hours.contains(now):
        return Decision(STOP, f"outside the render hours {settings.render_hours}")
    if settings.when_in_use == "keep":
        return Decision(RUN)
    reason = in_use_reason(settings, use)
    if not reason:
        return Decision(RUN)
    return Decision({"pause": PAUSE, "stop": STOP, "nice": NICE}[settings.when_in_use], reason)
