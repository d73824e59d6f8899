"""The share goes away between an agent's claim and the start of the render (in-process, through the seam).

The planner creates the frame's output folder right after the claim. If the
share is gone by then, the folder must not be built under the empty mount
point, and the frame must not count a failure: nothing was tried. It goes back
to pending when the share answers and is rendered once. The real unmount under
running agents (on sshfs, under stress-ng in CI) is test_faults_share.py.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from envy.render.profiles import load_profiles
from envy.render.submit import SubmitRequest, submit
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout
from farm import wait_for
from test_faults_seam import HOST, VanishingShareFS, make_agent, share, states  # noqa: F401 - fixtures
from test_faults_standin import StandIn


class GoneAfterClaimFS(VanishingShareFS):
    """The share vanishes the moment the first claim has been won."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.armed = True
        self.made_while_gone: list[str] = []

    def on_server(self, path: object) -> bool:  # type: ignore[override]
        there = super().on_server(path)  # type: ignore[arg-type]
        # rename_attempt's check that the claim is on the server: the claim has been won.
        if there and self.armed and "~work~" in os.fspath(path):  # type: ignore[arg-type]
            self.armed = False
            self.gone = True
        return bool(there)

    def mkdir(self, path: object) -> None:  # type: ignore[override]
        if self.gone:
            self.made_while_gone.append(os.fspath(path))  # type: ignore[arg-type]
        super().mkdir(path)  # type: ignore[arg-type]


def test_share_gone_before_the_output_folder_is_made_the_frame_goes_back_uncounted(
        tmp_path: Path, share: Path, make_agent, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="envy")
    standin = StandIn(tmp_path / "standin").install()
    shot = share / "proj" / "shot"
    bases = standin.make_frames(shot, 2, 0.2)
    # No retries: a failure counted for the outage would leave the frame failed for good.
    submit(ShareLayout(share), SubmitRequest(str(shot), output=str(share / "proj" / "out"), max_retries=0),
           load_profiles([standin.profile]), fs=REAL_FS)
    fs = GoneAfterClaimFS(share)
    agent = make_agent(share, fs, profiles=[str(standin.profile)])
    agent.heartbeat.beat()
    agent.start_render((), {})
    wait_for(lambda: any("given back unstarted" in r.message for r in caplog.records), 15,
             "the claimed frame to be given back")
    assert not (share / "proj" / "out").exists(), "the output folder was made while the share was away"
    assert standin.renders() == {}, "a render started while the share was away"
    fs.gone = False
    wait_for(lambda: all(v[0].split(":")[0] in ("done", "failed") for v in states(shot).values()), 20,
             "every frame to be finished")
    assert states(shot) == {b: [f"done:{HOST}"] for b in bases}, "the outage counted as the frame's failure"
    assert standin.renders() == {b: 1 for b in bases}
    assert not fs.made_while_gone
