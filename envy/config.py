"""Envy's settings: defaults, then files, then the environment, then the command line.

Precedence, lowest first (later wins, key by key):

1. the defaults, declared once with each key on ``Config`` below (docs/config-reference.md is
   generated from them; ``user_template/config.yaml`` shows them commented out),
2. the farm file on the share, ``<share>/config.yaml`` (kept by whoever runs the farm),
3. the user's folder on the share, ``<share>/users/<user>/config.yaml``,
4. the local file, ``--config FILE`` or ``<user config dir>/config.yaml``,
5. environment variables ``ENVY_SHARE``, ``ENVY_POLICY``,
6. command-line options.

This docstring is the one statement of the precedence; ``load_config`` applies it
in this order. Every key is declared with ``setting(default, kind, help)``
(envy/settings/schema.py); an error names the key and the file it came from.
A ``Config`` is built once at an entry point and passed in; nothing reads
settings at import time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import MappingProxyType
from typing import Any

from envy.nimby.settings import WHEN_IN_USE, NimbySettingError, RenderHours
from envy.notify.addresses import EMAIL_ADDRESS, SMTP_SERVER, WEBHOOK_URL, email_list_check
from envy.platform.host import user_config_dir
from envy.protocol.selectors import DEFAULT_HOST_PATTERN
from envy.settings.files import parse_yaml
from envy.settings.kinds import (
    Checked,
    Choice,
    Flag,
    MapOf,
    Number,
    Record,
    Source,
    Text,
    TextList,
    Whole,
    regex_check,
)
from envy.settings.schema import Key, Rule, Schema, schema_of, setting
from envy.share.bounded import FileTrust, ShareFileError, read_config_file

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A bad setting: the message names the key, the file and what is allowed."""


_SELECTORS = TextList("a list of selectors, e.g. ['lab3 1-4']")
_RENDERER = Record(
    Schema("renderer settings", [Key("executable", Text("a path or command name"), None, "The renderer's program.")],
           ConfigError),
    "a mapping like {executable: PATH}",
)


def _render_hours_check(value: str, key: str, source: Source) -> str:
    text = value.strip()
    if text:
        try:
            RenderHours.parse(text, key, source.where)
        except NimbySettingError:
            source.fail(key, f"must be two different times HH:MM-HH:MM such as \"18:00-08:00\", got {value!r}")
    return text


def _roots_check(value: tuple[str, ...], key: str, source: Source) -> tuple[str, ...]:
    for root in value:
        # Absolute on some OS: one farm file serves Windows ("P:/projects") and POSIX machines.
        if not (PurePosixPath(root).is_absolute() or PureWindowsPath(root).drive):
            source.fail(key, f"must list absolute folders (a relative one would depend on where an agent "
                             f"starts), got {root!r}")
    return value


def _dead_after_problem(values: Mapping[str, Any]) -> str | None:
    dead_after, heartbeat = values["dead_after"], values["heartbeat"]
    if dead_after <= heartbeat * 2:
        return f"'dead_after' ({dead_after:g}) must be more than twice 'heartbeat' ({heartbeat:g})"
    return None


@dataclass(frozen=True)
class Config:
    """Every setting of one agent or shell, validated; an immutable value (``reload()`` builds a
    new one and swaps it in whole). Each key is declared once, here: its default, kind and help."""

    share: str | None = setting(
        None, Text(blank_is_none=True),
        "The Envy folder on the share, e.g. Z:/envy. Usually given by --share or ENVY_SHARE instead.")
    host_pattern: str = setting(
        DEFAULT_HOST_PATTERN, Checked(Text("a regular expression (text)"), regex_check(groups=("lab", "num"))),
        "How a host name splits into a lab and a number, for selectors like \"lab3 03\". Needs the named "
        "groups lab and num; the default fits LAB3-03 and GNOMON-LAB3-03.")
    groups: Mapping[str, tuple[str, ...]] = setting(
        MappingProxyType({}), MapOf(_SELECTORS, "a mapping of group names to lists of selectors, e.g. "
                                    "seniors: ['lab3 1-4']", names="group", lower_names=True),
        "Named groups of hosts, used as \"@seniors print('hi')\". Members are selectors.")
    poll_interval: float = setting(
        2.0, Number(gt=0),
        "The most seconds between polls of the instruction file (one small fresh read per poll): a command "
        "reaches every agent within this.")
    poll_jitter: float = setting(
        0.1, Number(ge=0, lt=1),
        "How much sooner than poll_interval a poll may come, at random (0.1 = up to 10% sooner), so agents "
        "do not poll in lock-step. Never later: poll_interval stays the bound on a command's wait.")
    heartbeat: float = setting(
        5.0, Number(gt=0),
        "Seconds between status-file writes. Others judge an agent alive by seeing its heartbeat counter change.")
    dead_after: float = setting(
        30.0, Number(gt=0),
        "Seconds without a heartbeat change after which an agent is dead and its frames are taken over. Must "
        "cover the heartbeat plus the share's attribute cache (NFS: up to 60 s; SMB: about 10 s).")
    command_lifetime: float = setting(
        600.0, Number(gt=0), "Seconds a command stays eligible: an agent started later still runs younger commands.")
    workers: int = setting(1, Whole(ge=1), "Renders at the same time on one machine.")
    threads: int = setting(0, Whole(ge=0), "Threads per render (0: the renderer decides).")
    memory_mb: int = setting(0, Whole(ge=0), "Memory cap per render in MB (0: none).")
    max_retries: int = setting(2, Whole(ge=0), "Retries before a frame fails.")
    renderers: Mapping[str, Mapping[str, str]] = setting(
        MappingProxyType({}), MapOf(_RENDERER, "a mapping of renderer names to settings, e.g. "
                                    "vray: {executable: C:/vray.exe}", names="renderer", lower_names=True),
        "Renderer executables, when they are not at the usual place.")
    profiles: tuple[str, ...] = setting((), TextList(), "Extra renderer profiles (YAML files; see docs/renderers.md).")
    remap: tuple[str, ...] = setting(
        (), TextList(), "Path remapping between operating systems, \"FROM,TO\", e.g. \"P:/,/mnt/renders/\".")
    policy: str | None = setting(
        None, Text(blank_is_none=True), "The lockdown policy file, kept by the lab's admin (docs/admin-guide.md).")
    signed: bool = setting(
        False, Flag(),
        "Run only signed instruction lines (envy/protocol/signing.py). Set it in each machine's local config "
        "file, so nobody who can write the share can turn it off.")
    strict_modes: bool = setting(
        True, Flag(),
        "Refuse an instruction file or Envy_Functions.py that other users can write (POSIX), like OpenSSH's "
        "StrictModes (envy/security.py).")
    log_max_bytes: int = setting(1_000_000, Whole(ge=1), "The agent's log is rotated at this size.")
    log_backups: int = setting(3, Whole(ge=0), "Old agent log files kept.")
    # Someone at the machine (NIMBY): docs/machine-use.md, envy/nimby/.
    when_in_use: str = setting(
        "pause", Choice(*WHEN_IN_USE),
        "What renders do while someone uses the machine: pause (suspend, resume when idle again), stop "
        "(give the frame back), nice (lowest priority) or keep.")
    idle_after: float = setting(
        10.0, Number(ge=0), "Minutes without keyboard or mouse input before the machine counts as idle again.")
    cpu_busy_percent: float = setting(
        0.0, Number(ge=0, le=100), "Other programs using more than this % of the CPU count as in use (0: off).")
    users_in_use: bool = setting(
        True, Flag(), "Another user signed in at the machine (console, remote desktop) counts as in use.")
    render_hours: str = setting(
        "", Checked(Text("text such as \"18:00-08:00\""), _render_hours_check),
        "Render only in these hours, local time, e.g. \"18:00-08:00\" (overnight spans midnight); empty: any time.")
    # Job notifications (docs/user-guide.md): set in your own users/<you>/config.yaml; the agent
    # that finishes your job's last frame reads them from there (envy/notify/).
    notify_webhook: str | None = setting(
        None, Text("an http:// or https:// URL", pattern=WEBHOOK_URL, max_length=2048, blank_is_none=True),
        "A Discord or Slack incoming-webhook URL: a message is posted there when one of your jobs is complete "
        "or complete with failures.")
    notify_email: tuple[str, ...] = setting(
        (), Checked(TextList("an e-mail address or a list of them", single_ok=True), email_list_check),
        "E-mail addresses told when one of your jobs is complete or complete with failures (at most 10).")
    smtp_server: str | None = setting(
        None, Text("host or host:port", pattern=SMTP_SERVER, max_length=255, blank_is_none=True),
        "The mail server the agents send notification e-mail through, e.g. smtp.school.edu:25 (empty: localhost).")
    smtp_from: str | None = setting(
        None, Text("an e-mail address", pattern=EMAIL_ADDRESS, max_length=254, blank_is_none=True),
        "The sender of notification e-mail (empty: envy@<the agent's host>).")
    notify_desktop: bool = setting(
        True, Flag(), "Also show an OS desktop notification (notify-send, macOS Notification Center, a Windows "
        "toast) when one of your jobs finishes, while envy-io's shell or monitor runs where you submitted it; "
        "the shell prints the line above its prompt either way.")
    # Hostile-share limits (docs/security.md): where jobs may lead, how long a render may run.
    project_roots: tuple[str, ...] = setting(
        (), Checked(TextList("a list of absolute folders, e.g. [\"P:/projects\", /mnt/projects]"), _roots_check),
        "Folders outside the share where jobs may read scenes and write images, e.g. [\"P:/projects\"]. "
        "Every path a job names must be inside the share or one of these (after symlinks). Farm config "
        "(or the machine's local config) only: a user's own file on the share cannot set it.")
    render_timeout: float = setting(
        0.0, Number(ge=0),
        "Seconds a render may run before it is killed and the frame failed (0: no limit). A job's "
        "`submit --timeout` replaces it, up to render_timeout_max.")
    render_timeout_max: float = setting(
        0.0, Number(ge=0),
        "The most a job may ask for with --timeout, in seconds (0: no maximum). Farm config only.")
    render_stall: float = setting(
        0.0, Number(ge=0),
        "Seconds a render may print nothing before it is killed as stalled (0: no limit). A job's "
        "`submit --stall` replaces it, up to render_stall_max.")
    render_stall_max: float = setting(
        0.0, Number(ge=0),
        "The most a job may ask for with --stall, in seconds (0: no maximum). Farm config only.")
    sources: tuple[str, ...] = ()  # the files that were read, for `envy-io config` and error messages
    # Signed mode: why the farm's config.yaml was refused ('' when it was not). Renders wait while it
    # is set: a tampered farm file must not silently drop the policy it named (docs/security.md).
    refused: str = ""

    def with_values(self, values: Mapping[str, Any], where: str) -> Config:
        """Validate ``values`` (from one source named ``where``) and return an updated copy."""
        source = Source(where, ConfigError)
        changes = CONFIG_KEYS.clean(values, source, fill_defaults=False, rules=False)
        merged = dataclasses.replace(self, **changes)
        CONFIG_KEYS.check_rules({name: getattr(merged, name) for name in CONFIG_KEYS.keys}, source)
        return merged


CONFIG_KEYS = schema_of(
    Config, "Farm config", ConfigError,
    rules=[Rule("dead_after must be more than twice heartbeat.", _dead_after_problem)],
)
# Each key with its default (the values above). Callers test membership ("signed" in DEFAULTS).
DEFAULTS: Mapping[str, Any] = MappingProxyType(CONFIG_KEYS.defaults())


def read_yaml_file(path: Path) -> dict[str, Any]:
    """Read one YAML settings file; a missing file is empty, a broken one is a ConfigError."""
    return _read_yaml(path)[0]


def _read_yaml(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        # The farm's config.yaml is on the share: bounded and regular (a FIFO would block the start).
        raw = read_config_file(path, "config")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        return {}, b""
    except ShareFileError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    data = parse_yaml(text, str(path), ConfigError)
    if data is None:
        return {}, raw
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold 'key: value' settings, not a {type(data).__name__}")
    return data, raw


def read_share_yaml(path: Path, trust: FileTrust | None) -> tuple[dict[str, Any], str]:
    """A config file on the share, and why signed mode refused it ('' when it did not).

    With ``trust`` (signed mode), a file holding keys that choose code (``SIGNED_KEYS``)
    must be signed with the farm key; a refused one keeps none of those keys, and one log
    line names the file and the keys. The rest of it applies.
    """
    data, raw = _read_yaml(path)
    chosen = sorted(k for k, v in data.items() if k in SIGNED_KEYS and SAFE_VALUES.get(k, _NOT_SAFE) != v)
    if trust is None or not chosen:
        return data, ""  # unsigned mode, or nothing in it chooses code: it needs no signature
    problem = trust(path, raw)
    if problem is None:
        return data, ""
    log.error("%s; ignoring its %s", problem, ", ".join(chosen))
    return {k: v for k, v in data.items() if k not in chosen}, problem


# Keys that say what the farm allows, not how one user likes it: a user's own file on the share
# cannot set them (``policy: null`` there used to turn the farm's lockdown policy off). The farm
# file, the machine's local config and the command line can.
FARM_ONLY_KEYS = frozenset({
    "policy", "signed", "strict_modes", "project_roots", "render_timeout_max", "render_stall_max",
})


# Keys that choose what runs on an agent or where its paths may lead: in signed mode a file on the
# share sets them only when it is signed with the farm key (issue 9 Must-hold 2, docs/security.md).
SIGNED_KEYS = FARM_ONLY_KEYS | {"renderers", "profiles"}
# The values that only tighten the farm: an unsigned file may still turn signed mode or StrictModes on.
SAFE_VALUES: Mapping[str, Any] = MappingProxyType({"signed": True, "strict_modes": True})
_NOT_SAFE = object()


def without_farm_keys(values: Mapping[str, Any], where: Path) -> dict[str, Any]:
    """``values`` read from a user's own file, less the farm-only keys (each dropped with a warning)."""
    kept = {}
    for name, value in values.items():
        if name in FARM_ONLY_KEYS:
            log.warning("%s: '%s' is a farm setting; a user's file cannot set it (ignored)", where, name)
        else:
            kept[name] = value
    return kept


def user_folder(share: str | os.PathLike[str], user: str) -> Path:
    return Path(share) / "users" / user


def load_config(
    *,
    share: str | None = None,
    config_file: str | None = None,
    user: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    trust: FileTrust | None = None,
) -> Config:
    """Build the Config from every source in precedence order (see the module docstring).

    ``trust`` is signed mode's check for the share's files (the farm's and the user's
    config.yaml): the caller passes it once a first load said ``signed: true``.
    """
    env = os.environ if env is None else env
    local_file = Path(config_file) if config_file else user_config_dir() / "config.yaml"
    if config_file and not local_file.is_file():
        raise ConfigError(f"{local_file}: config file not found (given with --config)")
    local = read_yaml_file(local_file)
    # The share's location may come from the command line, the environment or the local file.
    share_dir = share or env.get("ENVY_SHARE") or local.get("share")
    cfg = Config()
    sources: list[str] = []
    refused = ""
    if share_dir:
        farm_file = Path(share_dir) / "config.yaml"
        farm_values, refused = read_share_yaml(farm_file, trust)
        cfg = cfg.with_values(farm_values, str(farm_file))
        sources.append(str(farm_file))
        if user:
            user_file = user_folder(share_dir, user) / "config.yaml"
            # A user's own file loses what it may not choose; only the farm file's refusal holds renders.
            values = without_farm_keys(read_share_yaml(user_file, trust)[0], user_file)
            cfg = cfg.with_values(values, str(user_file))
            sources.append(str(user_file))
    cfg = cfg.with_values(local, str(local_file))
    sources.append(str(local_file))
    env_values: dict[str, Any] = {}
    if env.get("ENVY_POLICY"):
        env_values["policy"] = env["ENVY_POLICY"]
    cfg = cfg.with_values(env_values, "environment")
    cli = dict(overrides or {})
    if share_dir:
        cli["share"] = str(share_dir)
    cfg = cfg.with_values({k: v for k, v in cli.items() if v is not None}, "command line")
    return dataclasses.replace(cfg, sources=tuple(sources), refused=refused)
