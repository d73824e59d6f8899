"""The farm as one Envy IO session sees it: settings, share, the user's functions, the agents.

Built once at the entry point from a Config and passed in (no globals). The
parts that touch the share (functions, agent board, sender) are made on first
use, so a command pays only for what it needs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from envy.config import Config
from envy.platform.host import local_dirs
from envy.protocol.instructions import parse_instruction_file
from envy.protocol.selectors import HostNamePattern, SelectorError
from envy.protocol.sender import InstructionSender, SendResult
from envy.render.jobs import list_jobs
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout, ShareMissing
from envy_io.agents import AgentBoard, observation_cache
from envy_io.errors import FarmError, UsageError
from envy_io.line_hints import missing_star, render_targets, unknown_render_jobs
from envy_io.lines import InstructionLine, LineChecker
from envy_io.user_functions import UserFunctions

log = logging.getLogger(__name__)


@dataclass
class Farm:
    config: Config
    layout: ShareLayout
    user: str
    fs: ShareFS  # the share as this process reaches it (REAL_FS from the entry point)
    state_dir: Path = field(default_factory=lambda: local_dirs().state)

    @classmethod
    def open(cls, config: Config, user: str, fs: ShareFS) -> Farm:
        """The farm of ``config.share``; a missing share setting or an unmounted share is one clear line."""
        if not config.share:
            raise UsageError("no share given: use --share DIR, set ENVY_SHARE, or put 'share: DIR' in your config.yaml")
        farm = cls(config, ShareLayout(Path(config.share)), user, fs)
        farm.require_share()
        return farm

    def require_share(self) -> None:
        try:
            self.layout.require(self.fs)
        except ShareMissing as exc:
            raise FarmError(str(exc)) from None

    @cached_property
    def functions(self) -> UserFunctions:
        return UserFunctions(self.layout.user_dir(self.user))

    @cached_property
    def checker(self) -> LineChecker:
        try:
            pattern = HostNamePattern(self.config.host_pattern)
        except SelectorError as exc:
            raise UsageError(f"setting 'host_pattern': {exc}") from None
        return LineChecker(
            groups=self.config.groups,
            host_pattern=pattern,
            nv_names=lambda: self.functions.nv.names,
            io_names=lambda: self.functions.io.names(),
            io_error=lambda: self.functions.io.error,
        )

    @cached_property
    def sender(self) -> InstructionSender:
        signer = None
        if self.config.signed:  # sign with the key kept off the share (envy/protocol/signing.py)
            from envy.protocol.signing import SigningError, load_key, make_signer

            try:
                signer = make_signer(load_key(share=self.config.share))
            except SigningError as exc:
                raise UsageError(str(exc)) from None
        return InstructionSender(self.layout, self.config.command_lifetime, self.fs, signer=signer)

    @cached_property
    def board(self) -> AgentBoard:
        return AgentBoard(self.layout, self.config.dead_after, observation_cache(self.state_dir), fs=self.fs)

    def second_look(self, line: InstructionLine) -> None:
        """Refuse a valid line that would reach nobody (a missing ``*``, an unknown job); see line_hints.py."""
        problem = missing_star(line, self.board.hosts(), self.checker.host_pattern)
        if problem is None and render_targets(line):
            jobs, _ = list_jobs(self.layout, self.fs)
            problem = unknown_render_jobs(line, jobs)
        if problem:
            raise UsageError(problem)

    def check_lines(self, lines: Sequence[str], force: bool = False) -> list[InstructionLine]:
        """Check every line first: one bad line means nothing is sent (the error names the line).

        Unless ``force``, lines that would reach nobody are refused too (``second_look``).
        """
        if not lines:
            raise UsageError("no lines given: expected SELECTOR COMMAND, e.g. \"lab3 03 print('hi')\"")
        checked = []
        for number, line in enumerate(lines, start=1):
            try:
                checked.append(self.checker.instruction(line))
                if not force:
                    self.second_look(checked[-1])
            except UsageError as exc:
                where = f"line {number}: " if len(lines) > 1 else ""
                raise UsageError(f"{where}{exc}") from None
        return checked

    def nv_warning(self, lines: Sequence[InstructionLine]) -> str | None:
        """Why NV names could not be checked, when a line uses NV and the file could not be read."""
        nv = self.functions.nv
        if nv.error and any(line.call.namespace == "NV" for line in lines):
            return f"NV function names not checked ({nv.error}); any public NV name was accepted"
        return None

    def send(self, lines: Sequence[InstructionLine]) -> SendResult:
        """Write checked lines under the writers' lock, in one atomic replace."""
        try:
            return self.sender.send([line.text for line in lines])
        except ShareMissing as exc:
            raise FarmError(str(exc)) from None
        except OSError as exc:  # includes LockTimeout
            raise FarmError(f"cannot write {self.layout.instructions}: {exc}") from None

    def instruction_file_problems(self) -> list[str]:
        """Malformed lines in the instruction file, as the agents will report them."""
        try:
            data = self.fs.read_bytes(self.layout.instructions)
        except OSError:
            return []  # missing is not "stop" (§1.7); the next send recreates it
        return [bad.describe() for bad in parse_instruction_file(data).bad]
