"""Envy's settings: defaults, then files, then the environment, then the command line.

Precedence, lowest first (later wins, key by key):

1. the defaults below (``DEFAULTS``; ``user_template/config.yaml`` repeats them with comments),
2. the farm file on the share, ``<share>/config.yaml`` (kept by whoever runs the farm),
3. the user's folder on the share, ``<share>/users/<user>/config.yaml``,
4. the local file, ``--config FILE`` or ``<user config dir>/config.yaml``,
5. environment variables ``ENVY_SHARE``, ``ENVY_POLICY``,
6. command-line options.

Every key has a validator; an error names the key and the file it came from.
A ``Config`` is built once at an entry point and passed in; nothing reads
settings at import time.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from envy.platform.host import user_config_dir
from envy.protocol.selectors import DEFAULT_HOST_PATTERN


class ConfigError(ValueError):
    """A bad setting: the message names the key, the file and what is allowed."""


def _positive_number(key: str, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where}: '{key}' must be a number greater than 0, got {value!r}")
    return float(value)


def _non_negative_int(key: str, value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: '{key}' must be a whole number >= 0, got {value!r}")
    return value


def _positive_int(key: str, value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: '{key}' must be a whole number >= 1, got {value!r}")
    return value


def _fraction(key: str, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"{where}: '{key}' must be a number from 0 up to (not including) 1, got {value!r}")
    return float(value)


def _bool(key: str, value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
    return value


def _optional_str(key: str, value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: '{key}' must be text, got {value!r}")
    return value


def _regex(key: str, value: Any, where: str) -> str:
    import re

    if not isinstance(value, str):
        raise ConfigError(f"{where}: '{key}' must be a regular expression (text), got {value!r}")
    try:
        compiled = re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{where}: '{key}' is not a valid regular expression: {exc}") from None
    if not {"lab", "num"} <= set(compiled.groupindex):
        raise ConfigError(f"{where}: '{key}' must have named groups (?P<lab>...) and (?P<num>...)")
    return value


def _groups(key: str, value: Any, where: str) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(s, str) for s in v) for k, v in value.items()
    ):
        raise ConfigError(f"{where}: '{key}' must map group names to lists of selectors, e.g. seniors: ['lab3 1-4']")
    return {k.lower(): tuple(v) for k, v in value.items()}


def _str_list(key: str, value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ConfigError(f"{where}: '{key}' must be a list of text items")
    return tuple(value)


def _renderers(key: str, value: Any, where: str) -> dict[str, dict[str, str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: '{key}' must map renderer names to settings, e.g. vray: {{executable: C:/vray.exe}}")
    out: dict[str, dict[str, str]] = {}
    for name, settings in value.items():
        if not isinstance(settings, dict) or set(settings) - {"executable"} or not all(
            isinstance(v, str) for v in settings.values()
        ):
            raise ConfigError(f"{where}: '{key}.{name}' allows only 'executable: PATH'")
        out[str(name).lower()] = dict(settings)
    return out


Validator = Callable[[str, Any, str], Any]

# key -> (default, validator). user_template/config.yaml documents each one.
DEFAULTS: dict[str, tuple[Any, Validator]] = {
    "share": (None, _optional_str),
    "host_pattern": (DEFAULT_HOST_PATTERN, _regex),
    "groups": ({}, _groups),
    "poll_interval": (2.0, _positive_number),
    "poll_jitter": (0.25, _fraction),
    "heartbeat": (5.0, _positive_number),
    "dead_after": (30.0, _positive_number),
    "command_lifetime": (600.0, _positive_number),
    "workers": (1, _positive_int),
    "threads": (0, _non_negative_int),
    "memory_mb": (0, _non_negative_int),
    "max_retries": (2, _non_negative_int),
    "renderers": ({}, _renderers),
    "profiles": ((), _str_list),
    "remap": ((), _str_list),
    "policy": (None, _optional_str),
    "signed": (False, _bool),
    "strict_modes": (True, _bool),
    "log_max_bytes": (1_000_000, _positive_int),
    "log_backups": (3, _non_negative_int),
}


@dataclass(frozen=True)
class Config:
    share: str | None = None
    host_pattern: str = DEFAULT_HOST_PATTERN
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    poll_interval: float = 2.0
    poll_jitter: float = 0.25
    heartbeat: float = 5.0
    dead_after: float = 30.0
    command_lifetime: float = 600.0
    workers: int = 1
    threads: int = 0
    memory_mb: int = 0
    max_retries: int = 2
    renderers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()
    remap: tuple[str, ...] = ()
    policy: str | None = None
    signed: bool = False  # run only signed instruction lines (envy/protocol/signing.py)
    strict_modes: bool = True  # refuse instruction files and user modules others can write (envy/security.py)
    log_max_bytes: int = 1_000_000
    log_backups: int = 3
    sources: tuple[str, ...] = ()  # the files that were read, for `envy-io config` and error messages

    def with_values(self, values: Mapping[str, Any], where: str) -> "Config":
        """Validate ``values`` (from one source named ``where``) and return an updated copy."""
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key not in DEFAULTS:
                known = ", ".join(sorted(DEFAULTS))
                raise ConfigError(f"{where}: unknown key '{key}' (known keys: {known})")
            changes[key] = DEFAULTS[key][1](key, value, where)
        merged = dataclasses.replace(self, **changes)
        if merged.dead_after <= merged.heartbeat * 2:
            raise ConfigError(
                f"{where}: 'dead_after' ({merged.dead_after:g}) must be more than twice 'heartbeat' ({merged.heartbeat:g})"
            )
        return merged


def read_yaml_file(path: Path) -> dict[str, Any]:
    """Read one YAML settings file; a missing file is empty, a broken one is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{line} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold 'key: value' settings, not a {type(data).__name__}")
    return data


def user_folder(share: str | os.PathLike[str], user: str) -> Path:
    return Path(share) / "users" / user


def load_config(
    *,
    share: str | None = None,
    config_file: str | None = None,
    user: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Build the Config from every source in precedence order (see the module docstring)."""
    env = os.environ if env is None else env
    local_file = Path(config_file) if config_file else user_config_dir() / "config.yaml"
    if config_file and not local_file.is_file():
        raise ConfigError(f"{local_file}: config file not found (given with --config)")
    local = read_yaml_file(local_file)
    # The share's location may come from the command line, the environment or the local file.
    share_dir = share or env.get("ENVY_SHARE") or local.get("share")
    cfg = Config()
    sources: list[str] = []
    if share_dir:
        farm_file = Path(share_dir) / "config.yaml"
        cfg = cfg.with_values(read_yaml_file(farm_file), str(farm_file))
        sources.append(str(farm_file))
        if user:
            user_file = user_folder(share_dir, user) / "config.yaml"
            cfg = cfg.with_values(read_yaml_file(user_file), str(user_file))
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
    return dataclasses.replace(cfg, sources=tuple(sources))
