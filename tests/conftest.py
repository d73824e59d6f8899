from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm import Farm
from netshare import netshare  # noqa: F401  (fixture re-export)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run when pytest-xdist's --dist loadgroup lost its groups.

    The browser and app modules share one farm, browser or build per module
    (xdist_group): split across workers, their later steps run against a farm
    nothing rendered on, and each worker builds the PEX again. pytest 9.2 with
    pytest-xdist 3.8 loses the groups without a word (pyproject.toml pins pytest).
    """
    if getattr(session.config, "workerinput", None) is None or not getattr(session.config.option, "loadgroup", False):
        return
    for item in session.items:
        mark = item.get_closest_marker("xdist_group")
        if mark is not None and not item.nodeid.endswith(f"@{mark.args[0] if mark.args else 'default'}"):
            raise RuntimeError(
                f"pytest-xdist's loadgroup did not group {item.nodeid}: this pytest ({pytest.__version__}) "
                "and pytest-xdist do not work together; install the versions pyproject.toml's test extra allows"
            )


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the real home: local state and config go to temp folders."""
    base = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("ENVY_STATE_DIR", str(base / "state"))
    monkeypatch.setenv("ENVY_CONFIG_DIR", str(base / "config"))
    monkeypatch.delenv("ENVY_SHARE", raising=False)
    monkeypatch.delenv("ENVY_LOG_DIR", raising=False)
    monkeypatch.delenv("ENVY_POLICY", raising=False)


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    f = Farm(tmp_path)
    try:
        yield f
    finally:
        f.stop_all()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """Skip on a developer machine without ``name``; in CI a missing tool is a failure."""
    import shutil

    path = shutil.which(name)
    if path is None:
        if in_ci():
            pytest.fail(f"{name} is required in CI (installed by .ci/run)")
        pytest.skip(f"{name} is not installed")
    return path
