"""What a user's NV function can reach: the agent's log, host facts and the process handler.

A function in ``Envy_Functions.py`` whose first parameter is named ``agent``
receives an ``AgentContext``::

    def bake(agent, name, frames=10):
        agent.log.info("baking %s", name)
        agent.run("bake-" + name, ["hython", "bake.py", name])   # a child process, logged

Long work belongs in a child process (``agent.run``): the function itself
runs on the agent's command thread, and a function that never returns holds
up the next NV command (built-ins like ``stop()`` still work).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envy.config import Config
from envy.config_source import ConfigSource
from envy.share.layout import ShareLayout, make_dirs_within

if TYPE_CHECKING:
    from envy.agent.processes import Child, ProcessHandler


@dataclass
class AgentContext:
    host: str
    user: str
    ip: str
    config_source: ConfigSource  # the agent's live config: a reload() is seen at the next use
    layout: ShareLayout
    processes: ProcessHandler
    log_dir: Path
    log: logging.Logger = logging.getLogger("envy.user")

    @property
    def config(self) -> Config:
        return self.config_source.current

    @property
    def share(self) -> Path:
        return self.layout.root

    def run(self, name: str, argv: Sequence[str], cwd: Path | None = None) -> Child:
        """Start ``argv`` as a child process with its own log under this host's logs folder."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
        log_path = self.log_dir / "children" / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}.log"
        make_dirs_within(self.log_dir.parent, self.log_dir.name, "children")  # never logs/ itself (§1.8)
        return self.processes.start(name, list(argv), log_path, cwd=cwd)
