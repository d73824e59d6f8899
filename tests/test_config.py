"""Settings: precedence, and errors that name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from envy.config import ConfigError, load_config
from envy.share.fs import REAL_FS
from envy.share.layout import init_share


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_precedence_defaults_share_user_local_env_cli(tmp_path: Path) -> None:
    share = tmp_path / "share"
    init_share(share, "ana", fs=REAL_FS)
    write(share / "config.yaml", "heartbeat: 4\npoll_interval: 3\nworkers: 2\n")
    write(share / "users" / "ana" / "config.yaml", "heartbeat: 3\nworkers: 3\n")  # replaces the template copy
    local = write(tmp_path / "local.yaml", "workers: 4\n")
    cfg = load_config(share=str(share), config_file=str(local), user="ana", overrides={"poll_interval": 1.5}, env={})
    assert (cfg.heartbeat, cfg.workers, cfg.poll_interval, cfg.dead_after) == (3.0, 4, 1.5, 30.0)


def test_share_from_environment_or_local_config(tmp_path: Path) -> None:
    local = write(tmp_path / "local.yaml", f"share: {tmp_path / 'from-file'}\n")
    assert load_config(config_file=str(local), env={}).share == str(tmp_path / "from-file")
    assert load_config(config_file=str(local), env={"ENVY_SHARE": "/from/env"}).share == "/from/env"


@pytest.mark.parametrize("text,words", [
    ("heartbeat: -1\n", ["'heartbeat'", "greater than 0"]),
    ("workers: many\n", ["'workers'", "whole number"]),
    ("colour: blue\n", ["unknown key 'colour'"]),
    ("host_pattern: '(no groups)'\n", ["'host_pattern'", "lab", "num"]),
    ("groups: [a, b]\n", ["'groups'"]),
    ("heartbeat: 20\n", ["'dead_after'", "twice"]),
    ("poll_interval: [1\n", ["not valid YAML"]),
])
def test_errors_name_the_key_and_the_file(tmp_path: Path, text: str, words: list[str]) -> None:
    bad = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(config_file=str(bad), env={})
    message = str(err.value)
    assert str(bad) in message and "\n" not in message
    for word in words:
        assert word in message


def test_user_template_config_is_valid_and_matches_the_defaults(tmp_path: Path) -> None:
    from importlib import resources

    template = resources.files("user_template") / "config.yaml"
    path = write(tmp_path / "t.yaml", template.read_text())
    assert load_config(config_file=str(path), env={}).heartbeat == 5.0


def test_a_users_copied_template_does_not_override_the_farm_config(tmp_path: Path) -> None:
    share = tmp_path / "share"
    init_share(share, "ana", fs=REAL_FS)  # copies user_template/config.yaml into users/ana/
    write(share / "config.yaml", "dead_after: 12\nheartbeat: 2\n")
    cfg = load_config(share=str(share), user="ana", env={}, config_file=None)
    assert (cfg.dead_after, cfg.heartbeat) == (12.0, 2.0)
