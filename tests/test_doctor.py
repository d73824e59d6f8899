"""``envy doctor``: a good local share, a real sshfs share, and shares that are wrong in known ways.

Doctor runs as a real subprocess (``python -m envy doctor``) so the exit code
and the printed advice are what an admin sees.
"""

from __future__ import annotations

import grp
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envy.doctor.clock_check import resolution_from_probe
from envy.share.fs import REAL_FS
from envy.share.layout import init_share
from smbshare import smbshare  # noqa: F401  (a fixture)

REPO = Path(__file__).resolve().parents[1]


def run_doctor(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "envy", "doctor", *args],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def doctor_json(*args: str) -> tuple[int, dict]:
    proc = run_doctor(*args, "--json")
    assert proc.stderr == "" or "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def by_check(report: dict) -> dict[str, dict]:
    return {c["check"]: c for c in report["checks"]}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every name under root with its size and mtime (files); directories by name only."""
    found: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            found[os.path.relpath(os.path.join(folder, d), root) + "/"] = (0, 0)
        for f in files:
            st = os.stat(os.path.join(folder, f))
            found[os.path.relpath(os.path.join(folder, f), root)] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "envy"
    init_share(root, "student", REAL_FS)
    return root


def test_good_local_share_passes_and_leaves_the_tree_as_it_was(share: Path) -> None:
    before = snapshot(share)
    code, report = doctor_json(str(share))
    assert code == 0, report
    checks = by_check(report)
    assert checks["sentinel and mount"]["verdict"] == "ok"
    assert checks["rename atomicity and no-replace"]["measurements"]["no_replace"] == "refused, both intact"
    assert checks["rename atomicity and no-replace"]["measurements"]["exclusive_create"] == "refused"
    assert checks["permissions"]["verdict"] == "ok"
    assert checks["case sensitivity"]["measurements"]["case_insensitive"] is False
    assert checks["timestamps and server clock"]["measurements"]["timestamp_resolution_s"] < 0.01
    assert abs(checks["timestamps and server clock"]["measurements"]["server_minus_local_s"]) < 1
    assert checks["visibility between clients"]["verdict"] == "skip"
    assert "--second-mount" in checks["visibility between clients"]["advice"][0]
    assert checks["free space"]["measurements"]["free_bytes"] > 0
    assert set(checks["latency"]["measurements"]) >= {"stat_median_ms", "small_read_median_ms", "rename_median_ms"}
    assert snapshot(share) == before


def test_human_output_prints_each_check_with_what_to_do(share: Path) -> None:
    proc = run_doctor(str(share))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for name in (
        "sentinel and mount",
        "permissions",
        "rename atomicity and no-replace",
        "case sensitivity",
        "timestamps and server clock",
        "visibility between clients",
        "free space",
        "latency",
    ):
        assert any(line.startswith("[") and f"] {name}:" in line for line in lines), name
    assert "fit for a farm" in proc.stdout


def test_wrong_permissions_are_each_reported_with_their_fix(share: Path) -> None:
    if os.name == "nt":
        pytest.skip("mode bits: POSIX only (Windows gets the ACL advice)")
    instructions = share / "instructions.txt"
    user_dir = share / "users" / "student"
    instructions.chmod(0o666)
    user_dir.chmod(0o775)
    others = _a_group_that_is_not_private()
    os.chown(user_dir, -1, others)
    seats = share / "seats"
    seats.mkdir()
    seats.chmod(0o777)
    before = snapshot(share)
    code, report = doctor_json(str(share))
    assert code == 1
    perms = by_check(report)["permissions"]
    assert perms["verdict"] == "fail"
    assert f"every user can write the instruction file {instructions}" in perms["result"]
    assert f"group {grp.getgrgid(others).gr_name!r} can write {user_dir}" in perms["result"]
    assert (
        f"chmod go-w '{instructions}'  (or use signed mode for a class farm, docs/admin-guide.md section 5)"
        in perms["advice"]
    )
    assert f"chmod go-w '{user_dir}'" in perms["advice"]
    assert f"chmod 1777 '{seats}'" in perms["advice"]
    assert report["verdict"] == "fail"
    assert snapshot(share) == before


def _a_group_that_is_not_private() -> int:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the user folder another group")
    for name in ("users", "staff", "nogroup", "daemon"):
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            continue
    pytest.skip("no shared group on this machine")


def test_missing_sentinel_fails_and_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "mnt"
    empty.mkdir()
    proc = run_doctor(str(empty))
    assert proc.returncode == 1
    assert "[FAIL] sentinel and mount: no ENVY_SHARE.json" in proc.stdout
    assert f"envy init {empty}" in proc.stdout
    assert "[skip] rename atomicity and no-replace: skipped" in proc.stdout
    assert list(empty.iterdir()) == []


def test_bad_second_mount_is_one_line_and_exit_2(share: Path, tmp_path: Path) -> None:
    proc = run_doctor(str(share), "--second-mount", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0
    assert "is not a folder" in proc.stderr


@pytest.mark.parametrize(
    "written, kept, step",
    [
        (1_700_000_001_123_456_789, 1_700_000_001_123_456_789, 1e-9),
        (1_700_000_001_123_456_789, 1_700_000_001_123_456_000, 1e-6),
        (1_700_000_001_123_456_789, 1_700_000_001_000_000_000, 1.0),
        (1_700_000_001_123_456_789, 1_700_000_002_000_000_000, 2.0),  # FAT rounds odd seconds up
        (1_700_000_001_123_456_789, 1_700_000_001_120_000_000, 0.01),
    ],
)
def test_timestamp_resolution_from_a_probe_mtime(written: int, kept: int, step: float) -> None:
    assert resolution_from_probe(written, kept) == pytest.approx(step)


@pytest.mark.netshare
def test_sshfs_share_with_a_second_mount(netshare) -> None:
    net = netshare(mounts=2, cache=True, cache_timeout=3)
    root, other = net.mounts[0] / "envy", net.mounts[1] / "envy"
    init_share(root, "student", REAL_FS)
    before = snapshot(net.export)
    code, report = doctor_json(str(root), "--second-mount", str(other), "--wait", "15")
    checks = by_check(report)
    assert checks["sentinel and mount"]["measurements"]["kind"] == "sshfs"
    renames = checks["rename atomicity and no-replace"]
    assert renames["verdict"] in ("ok", "warn"), renames  # warn: a reader may see "not found" mid-replace
    assert renames["measurements"]["reader_saw_torn"] == 0
    assert renames["measurements"]["two_mount_race_winners"] == 1
    assert renames["measurements"]["rename_onto_existing"] == "overwrites"  # posix-rename
    assert checks["timestamps and server clock"]["measurements"]["timestamp_resolution_s"] == 1.0  # SFTP v3: seconds
    seen = checks["visibility between clients"]["measurements"]
    assert seen["changed_content_read"] is not None and seen["changed_content_read"] < 3
    # sshfs keeps a positive entry for dcache_timeout: the removed file lingers in stat
    assert seen["removed_file_stat"] is None or seen["removed_file_stat"] > 0.5
    assert code == (1 if any(c["verdict"] == "fail" for c in report["checks"]) else 0)
    assert snapshot(net.export) == before


@pytest.mark.netshare
def test_sshfs_share_without_posix_rename_fails_the_publish_check(netshare) -> None:
    net = netshare(mounts=1, cache=True, posix_rename=False)
    root = net.mounts[0] / "envy"
    (root).mkdir()
    (root / "ENVY_SHARE.json").write_text('{"envy": "test"}\n')  # init itself publishes by replace
    code, report = doctor_json(str(root))
    assert code == 1
    renames = by_check(report)["rename atomicity and no-replace"]
    assert renames["verdict"] == "fail"
    assert "nothing can be published atomically here" in renames["result"]
    assert "posix-rename" in renames["advice"][0]
    assert sorted(p.name for p in root.iterdir()) == ["ENVY_SHARE.json"]


@pytest.mark.netshare
def test_samba_share_with_a_second_mount(smbshare) -> None:  # noqa: F811 (the imported fixture)
    """The Samba share through smbnetfs, as a lab's SMB client mounts it: what doctor finds there."""
    net = smbshare(mounts=2)
    root, other = net.mounts[0] / "envy", net.mounts[1] / "envy"
    init_share(root, "student", REAL_FS)
    before = snapshot(net.export)
    code, report = doctor_json(str(root), "--second-mount", str(other), "--wait", "15")
    checks = by_check(report)
    assert checks["sentinel and mount"]["measurements"]["kind"] == "smb"
    assert checks["case sensitivity"]["measurements"]["case_insensitive"] is True
    renames = checks["rename atomicity and no-replace"]
    # SMB refuses to replace a file another handle holds open: Envy retries, doctor says so (warn).
    assert renames["verdict"] == "warn", renames
    assert renames["measurements"]["reader_saw_torn"] == 0
    assert renames["measurements"]["two_mount_race_winners"] == 1
    assert "cannot be replaced until the reader closes it" in renames["result"]
    # smbnetfs reports a size of 0 of 0: unknown, not full.
    assert checks["free space"]["verdict"] in ("skip", "ok")
    seen = checks["visibility between clients"]["measurements"]
    assert seen["changed_content_read"] is not None and seen["changed_content_read"] < 3
    assert code == (1 if any(c["verdict"] == "fail" for c in report["checks"]) else 0)
    assert snapshot(net.export) == before
