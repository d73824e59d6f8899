"""The one place that builds an agent: every collaborator made here and handed in.

``build_agent`` makes, in this order: the live config, the clocks, the
command ledger, the process handler, the signed-mode check
(protocol/signing.py), the lockdown policy gate (policy/enforce.py, which
may refuse to start), the task-type planners for the render loop, and then
the ``Agent`` itself with all of them. Nothing patches the agent afterwards.
The entry point (envy/cli.py) chooses the real filesystem and the local
folders; tests pass their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from envy.agent.agent import Agent, OnceLog
from envy.agent.ledger import CommandLedger
from envy.agent.processes import ProcessHandler
from envy.app.version_watch import VersionWatch
from envy.config import Config
from envy.config_source import ConfigLoader, ConfigSource
from envy.houdini.cache_tasks import plan_cache_task
from envy.platform.dirs import LocalDirs
from envy.platform.idle import MachineUseReader, SystemMachineUse
from envy.platform.time_zone import Zone, machine_zone
from envy.policy.enforce import PolicyEnforcer
from envy.policy.rules import utc_now
from envy.protocol.file_signing import SignedFiles
from envy.protocol.signing import default_key_path, signing_check
from envy.protocol.status_seal import StatusSeal
from envy.render.host import RenderHost
from envy.render.plans import Planners, plan_frame_file, plan_range_task
from envy.render.render_loop import RenderLoop
from envy.render.still_task import plan_still_task
from envy.security import InstructionCheck, all_checks
from envy.share.bounded import FileTrust
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.share.names import nonce as new_nonce
from envy.share.share_clock import ShareClock
from envy.usd.husk_tasks import plan_husk_task

LEDGER_FILE = "ran-commands.json"


def standard_planners() -> Planners:
    """The task types every agent knows: per-frame scene files, frame ranges, husk, hython."""
    planners = Planners()
    planners.register_frames(plan_frame_file)
    planners.register_task("range", plan_range_task)
    planners.register_task("still", plan_still_task)  # a still .pov: one image, no --frames
    planners.register_task("husk", plan_husk_task)  # envy/usd
    planners.register_task("hython", plan_cache_task)  # envy/houdini
    return planners


def build_agent(
    config: Config,
    layout: ShareLayout,
    host: str,
    user: str,
    dirs: LocalDirs,
    *,
    fs: ShareFS,
    log_dir: Path | None = None,
    reload_config: ConfigLoader | None = None,
    render_at_start: bool = False,
    planners: Planners | None = None,
    clock: Callable[[], float] = time.time,
    policy_now: Callable[[], datetime] = utc_now,
    policy_clock: Callable[[], float] = time.monotonic,
    policy_zone: Callable[[], Zone] = machine_zone,
    machine_use: MachineUseReader | None = None,
    version_watch: VersionWatch | None = None,
) -> Agent:
    """An agent ready to ``run()``. Raises SigningError (no usable key) or PolicyRefusal (blacklisted).

    ``machine_use`` is how the NIMBY watcher sees someone at the machine
    (default: the OS's readers, envy/platform/idle.py; tests pass recorded values).
    ``log_dir`` is where the host's logs go (default: the share's, or
    ``dirs.logs``); ``clock`` is this machine's wall clock (the share's time is
    learned from it); ``policy_now``/``policy_clock`` are the instant (aware;
    the policy converts it to its ``timezone``) and the monotonic clock the
    lockdown policy judges by; ``policy_zone`` is this machine's own zone, for a
    policy that names none (envy/platform/time_zone.py: the OS's, never ``TZ``).
    """
    settings = ConfigSource(config, reload_config)
    state_dir = dirs.agent_state(host, layout.root)
    if log_dir is None:
        log_dir = (dirs.logs or layout.logs_dir) / host.lower()
    nonce = new_nonce()
    share_clock = ShareClock(clock)
    reports = OnceLog()  # the agent's warnings said once; the signed-mode check reports through it too
    ledger = CommandLedger(state_dir / LEDGER_FILE, lambda: settings.current.command_lifetime)

    checks: list[InstructionCheck] = []
    # Signed mode first: a missing key must not leave a seat claimed.
    signed = signing_check(config.signed, config.share, lambda: settings.current.command_lifetime,
                           default_key_path(state_dir=dirs.state), state_dir, share_clock.now, reports.report)
    trust: FileTrust | None = None
    seal: StatusSeal | None = None
    if signed is not None:
        checks.append(signed)
        # What chooses code (profiles, the policy, Envy_Functions.py) must be local or signed too,
        # and status files are sealed: only key holders speak for a host (Must-hold 10).
        trust = SignedFiles(signed.key, config.share, fs).problem
        seal = StatusSeal(signed.key)
    policy: PolicyEnforcer | None = None
    if config.policy:
        policy = PolicyEnforcer(
            Path(config.policy), user=user, host=host, nonce=nonce, layout=layout, fs=fs,
            config=lambda: settings.current, ledger=ledger, command_clock=share_clock.now,
            now=policy_now, clock=policy_clock, zone=policy_zone, trust=trust,
        )
        policy.start()  # PolicyRefusal for a blacklisted user, before anything else starts
        checks.append(policy.allows)
    task_types = planners if planners is not None else standard_planners()

    def make_render_loop(render_host: RenderHost) -> RenderLoop:
        return RenderLoop(render_host, task_types, trust, seal)

    agent = Agent(
        settings, layout, host, user, state_dir, log_dir,
        fs=fs, nonce=nonce, share_clock=share_clock, ledger=ledger, processes=ProcessHandler(state_dir),
        make_render_loop=make_render_loop, verify=all_checks(checks), policy=policy,
        render_at_start=render_at_start, reports=reports,
        machine_use=machine_use if machine_use is not None else SystemMachineUse(user),
        authentic=signed.authentic if signed is not None else None, trust=trust, status_seal=seal,
        version_watch=version_watch,
    )
    return agent
