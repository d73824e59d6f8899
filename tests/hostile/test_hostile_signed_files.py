"""Signed files (Must-hold 2): ``envy-io sign FILE`` and the check that refuses an unsigned or changed file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from envy.protocol.file_signing import file_problem, is_local, read_signed_file, signature_path
from envy.protocol.signing import KEY_ENV, keygen, load_key
from envy.share.bounded import ShareFileError
from envy.share.fs import ShareFS


def envy_io(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "envy_io", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def test_envy_io_sign_covers_a_profile_and_any_change_or_rename_is_refused(tmp_path: Path) -> None:
    key_path = keygen(tmp_path / "keys" / "signing.key")
    profile = tmp_path / "share" / "profiles" / "vray.yaml"
    profile.parent.mkdir(parents=True)
    profile.write_text("name: vray\nextensions: [.vrscene]\nargv: ['{scene}']\n")
    done = envy_io("sign", str(profile), env={KEY_ENV: str(key_path)})
    assert done.returncode == 0, done.stderr
    assert signature_path(profile).exists()
    fs, key = ShareFS(), load_key(key_path)
    assert read_signed_file(key, profile, "profile", fs) == profile.read_bytes()

    # A classmate changes the executable: refused with one line naming the file.
    profile.write_text("name: vray\nextensions: [.vrscene]\nexecutables: {linux: [/bin/sh]}\nargv: ['{scene}']\n")
    with pytest.raises(ShareFileError, match="changed since it was signed") as caught:
        read_signed_file(key, profile, "profile", fs)
    assert str(profile) in str(caught.value) and "\n" not in str(caught.value)

    # Or renames a signed file into another's place.
    other = profile.with_name("policy.yaml")
    other.write_bytes(b"name: vray\n")
    signature_path(other).write_bytes(signature_path(profile).read_bytes())
    assert "changed since it was signed" in (file_problem(key, other, other.read_bytes(), fs) or "")

    # Or writes an unsigned one.
    fresh = profile.with_name("new.yaml")
    fresh.write_text("name: new\n")
    assert "is not signed" in (file_problem(key, fresh, fresh.read_bytes(), fs) or "")


def test_a_file_signed_with_another_key_is_refused(tmp_path: Path) -> None:
    mine = load_key(keygen(tmp_path / "a.key"))
    theirs = keygen(tmp_path / "b.key")
    path = tmp_path / "Envy_Functions.py"
    path.write_text("def hello():\n    pass\n")
    assert envy_io("sign", str(path), env={KEY_ENV: str(theirs)}).returncode == 0
    assert "another key" in (file_problem(mine, path, path.read_bytes(), ShareFS()) or "")


def test_sign_without_a_key_is_one_line_and_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\n")
    done = envy_io("sign", str(path), env={KEY_ENV: str(tmp_path / "none.key")})
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1 and "no key" in done.stderr


def test_local_means_outside_the_share(tmp_path: Path) -> None:
    (tmp_path / "share").mkdir()
    assert is_local(tmp_path / "local" / "config.yaml", tmp_path / "share")
    assert not is_local(tmp_path / "share" / "config.yaml", tmp_path / "share")


def test_in_signed_mode_an_unsigned_profile_on_the_share_is_refused_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from envy.protocol.file_signing import SignedFiles, sign_file
    from envy.render.profiles import load_profiles

    key = load_key(keygen(tmp_path / "k.key"))
    share = tmp_path / "share"
    share.mkdir()
    evil = share / "evil.yaml"
    evil.write_text("name: evil\nextensions: [.evil]\nexecutables: {linux: [/bin/sh]}\nargv: ['-c', 'id', '{scene}']\n")
    good = share / "good.yaml"
    good.write_text("name: good\nextensions: [.good]\nexecutables: {linux: [/bin/true]}\nargv: ['{scene}']\n")
    sign_file(key, good, ShareFS())
    local = tmp_path / "local.yaml"
    local.write_text("name: local\nextensions: [.loc]\nexecutables: {linux: [/bin/true]}\nargv: ['{scene}']\n")
    trust = SignedFiles(key, share, ShareFS()).problem
    profiles = load_profiles([evil, good, local], trust=trust)
    assert "evil" not in profiles and "good" in profiles and "local" in profiles
    refusals = [r.message for r in caplog.records if "refusing" in r.message]
    assert len(refusals) == 1 and str(evil) in refusals[0] and "is not signed" in refusals[0]


def test_signed_mode_keeps_only_the_signed_code_keys_of_the_share_config_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from envy.config import load_config
    from envy.protocol.file_signing import SignedFiles, sign_file

    key = load_key(keygen(tmp_path / "k.key"))
    share = tmp_path / "share"
    (share / "users" / "ann").mkdir(parents=True)
    farm_file = share / "config.yaml"
    farm_file.write_text("workers: 3\nprofiles: [/x/evil.yaml]\nrenderers: {vray: {executable: /bin/sh}}\n"
                         "policy: /x/none.yaml\nsigned: true\n")
    user_file = share / "users" / "ann" / "config.yaml"
    user_file.write_text("threads: 4\nrenderers: {povray: {executable: /bin/sh}}\n")
    local = tmp_path / "local.yaml"
    local.write_text("signed: true\n")
    trust = SignedFiles(key, share, ShareFS()).problem

    cfg = load_config(share=str(share), config_file=str(local), user="ann", env={}, trust=trust)
    # Unsigned: what cannot choose code applies; what can is dropped, and renders wait (refused).
    assert (cfg.workers, cfg.threads, cfg.signed) == (3, 4, True)
    assert cfg.profiles == () and dict(cfg.renderers) == {} and cfg.policy is None
    assert str(farm_file) in cfg.refused and "is not signed" in cfg.refused
    refusals = [r.message for r in caplog.records if "refusing" in r.message]
    assert len(refusals) == 2 and "ignoring its policy, profiles, renderers" in refusals[0]

    sign_file(key, farm_file, ShareFS())
    cfg = load_config(share=str(share), config_file=str(local), user="ann", env={}, trust=trust)
    assert cfg.refused == "" and cfg.profiles == ("/x/evil.yaml",) and cfg.policy == "/x/none.yaml"
    assert "povray" not in cfg.renderers  # the user's own file still may not choose an executable

    # Unsigned mode: the share's writers are trusted (docs/security.md), nothing is refused.
    unsigned_local = tmp_path / "unsigned-local.yaml"
    unsigned_local.write_text("workers: 1\n")
    cfg = load_config(share=str(share), config_file=str(unsigned_local), user="ann", env={})
    assert cfg.refused == "" and "povray" in cfg.renderers
