"""Local state is per share and host (envy/local_state.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envy.local_state import AlreadyRunning, claim_agent, share_id, share_key
from envy.platform.dirs import LocalDirs
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share


def agent_state_dir(base: Path, host: str, share: str | os.PathLike[str]) -> Path:
    return LocalDirs(state=base, config=base / "config").agent_state(host, share)


def test_one_host_on_two_shares_gets_two_folders_and_one_share_one_folder(tmp_path: Path) -> None:
    a = agent_state_dir(tmp_path, "LAB3-03", tmp_path / "shareA")
    b = agent_state_dir(tmp_path, "LAB3-03", tmp_path / "shareB")
    assert a != b
    assert a.parent == tmp_path / "agents" and a.name.startswith("lab3-03-")
    # The same share spelled with a trailing separator or a dot segment is the same share.
    assert agent_state_dir(tmp_path, "lab3-03", f"{tmp_path / 'shareA'}{os.sep}") == a
    assert agent_state_dir(tmp_path, "lab3-03", tmp_path / "x" / ".." / "shareA") == a
    assert len(share_key(tmp_path)) == 10


def test_a_second_agent_for_the_same_share_is_refused_naming_share_and_pid(tmp_path: Path) -> None:
    state = agent_state_dir(tmp_path, "lab1", "/mnt/envy")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (state).mkdir(parents=True)
        import psutil

        record = {"pid": holder.pid, "create_time": psutil.Process(holder.pid).create_time()}
        (state / "agent.pid").write_text(json.dumps(record))
        with pytest.raises(AlreadyRunning) as err:
            claim_agent(state, "lab1", "/mnt/envy")
        assert "/mnt/envy" in str(err.value) and f"pid {holder.pid}" in str(err.value)
        # The other share's folder is free.
        claim_agent(agent_state_dir(tmp_path, "lab1", "/mnt/other"), "lab1", "/mnt/other")
    finally:
        holder.kill()
        holder.wait()
    # Once the holder is gone (a pid that may be reused by now), the lock is ours.
    assert json.loads(claim_agent(state, "lab1", "/mnt/envy").read_text())["pid"] == os.getpid()


def test_a_recreated_share_at_the_same_path_has_a_new_id(tmp_path: Path) -> None:
    layout = ShareLayout(tmp_path / "share")
    init_share(layout.root, "student", REAL_FS)
    first = share_id(layout, REAL_FS)
    layout.sentinel.unlink()
    init_share(layout.root, "student", REAL_FS)
    assert first and share_id(layout, REAL_FS) and share_id(layout, REAL_FS) != first


def test_an_old_sentinel_without_id_still_has_a_stable_id(tmp_path: Path) -> None:
    layout = ShareLayout(tmp_path)
    layout.sentinel.write_text('{"envy": "0.1.0", "created": "2026-01-01T00:00:00Z"}\n')
    assert share_id(layout, REAL_FS) == share_id(layout, REAL_FS) is not None


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs")
@pytest.mark.parametrize("kind", ["fifo", "huge", "binary", "missing", "bad-id"])
def test_hostile_sentinels_never_block_or_raise(tmp_path: Path, kind: str) -> None:
    layout = ShareLayout(tmp_path)
    if kind == "fifo":
        os.mkfifo(layout.sentinel)
        assert share_id(layout, REAL_FS) is None
    elif kind == "huge":
        layout.sentinel.write_bytes(b"x" * 10_000_000)
        assert share_id(layout, REAL_FS) is None
    elif kind == "binary":
        layout.sentinel.write_bytes(os.urandom(300))
        assert share_id(layout, REAL_FS)
    elif kind == "missing":
        assert share_id(layout, REAL_FS) is None
    else:
        layout.sentinel.write_text(json.dumps({"id": ["not", "a", "string"]}))
        assert share_id(layout, REAL_FS)


def test_render_mode_from_a_recreated_share_is_not_resumed(tmp_path: Path) -> None:
    import json as _json

    from envy.render.render_loop import RENDER_MODE_FILE, remembered_targets

    (tmp_path / RENDER_MODE_FILE).write_text(_json.dumps({"targets": ["shot010"], "share": "old-share-id"}))
    assert remembered_targets(tmp_path, "old-share-id") == ["shot010"]
    assert remembered_targets(tmp_path, "new-share-id") is None
    (tmp_path / RENDER_MODE_FILE).write_text(_json.dumps({"targets": []}))  # written before share ids
    assert remembered_targets(tmp_path, "new-share-id") == []
