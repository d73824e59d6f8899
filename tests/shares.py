"""Both real network shares behind one fixture: sshfs (default caching) and Samba through smbnetfs.

``network_share`` is parametrized over the two kinds, so a test written once
runs on both, each mount a machine with its own caches (ENGINEERING §4)::

    from shares import network_share  # noqa: F401  (fixture)

    def test_x(network_share):
        share = network_share(mounts=2)
        share.kind  # "sshfs" or "samba"
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netshare import net_share, require_netshare
from smbshare import require_smbshare, samba_share

SHARE_KINDS = ("sshfs", "samba")


def require_share(kind: str) -> None:
    (require_netshare if kind == "sshfs" else require_smbshare)()


@contextlib.contextmanager
def open_share(kind: str, root: Path, mounts: int = 2) -> Iterator[Any]:
    """A share of ``kind`` under ``root`` with the mounts a lab has (sshfs: default caching)."""
    if kind == "sshfs":
        with net_share(root, mounts=mounts) as share:
            share.kind = "sshfs"
            yield share
    else:
        with samba_share(root, mounts=mounts) as share:
            yield share


@pytest.fixture(params=SHARE_KINDS)
def network_share(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    kind = request.param
    require_share(kind)
    stack = contextlib.ExitStack()

    def make(mounts: int = 2) -> Any:
        return stack.enter_context(open_share(kind, tmp_path / f"{kind}-share", mounts))

    with stack:
        yield make
