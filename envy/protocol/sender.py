"""Writing commands into the instruction file (Envy IO's side of the protocol).

Under the writers' lock (share/lock.py): read the file, stamp hand-written
lines, drop commands older than their lifetime, append the new ones, and
publish with one atomic replace. Agents never write this file.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from envy.platform.host import host_name
from envy.protocol.instructions import (
    Instruction,
    id_in_window,
    parse_instruction_file,
    render_instruction_file,
    stamp,
)
from envy.protocol.selectors import split_line
from envy.share.atomic import atomic_write
from envy.share.bounded import ShareFileError, read_share_file
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout, instructions_header
from envy.share.lock import RenameLock, owner_id
from envy.share.names import nonce
from envy.share.share_clock import probe_share_time
from envy.share.temp_cleanup import remove_old_temp_files

log = logging.getLogger(__name__)

# Keep commands a little longer than their lifetime so a reader never sees a
# command vanish while it is still eligible.
PRUNE_MARGIN_S = 60.0

Signer = Callable[[Instruction], Instruction]


@dataclass
class SendResult:
    sent: list[Instruction]
    stamped: list[Instruction]  # hand-written lines that got a stamp now
    pruned: int
    skipped: list[str]  # malformed lines found in the file (kept, commented out)


class InstructionSender:
    def __init__(
        self,
        layout: ShareLayout,
        lifetime: float,
        fs: ShareFS,
        signer: Signer | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.layout = layout
        self.lifetime = lifetime
        self.fs = fs
        self.signer = signer
        # Issue times are the file server's time (share_clock.py), so agents with
        # skewed clocks judge command ages right. Tests may inject a clock.
        self.clock = clock or (lambda: probe_share_time(layout.root, fs))
        self.lock = RenameLock(layout.instructions_lock, owner_id(host_name(), nonce()), fs)

    def send(self, lines: Sequence[str]) -> SendResult:
        """Append ``lines`` ("SELECTOR COMMAND", already validated) as stamped commands."""
        self.layout.require(self.fs)
        with self.lock.held():
            return self._send_locked(lines)

    def _send_locked(self, lines: Sequence[str]) -> SendResult:
        skipped_extra: list[str] = []
        try:
            # Bounded (a FIFO or a 2 GB file cannot hang or exhaust Envy IO); an oversized file keeps
            # its first 4 MiB, and the rewrite below brings it back under the cap.
            data = read_share_file(self.fs, self.layout.instructions, "instructions", partial=True)
        except FileNotFoundError:
            data = b""
        except ShareFileError as exc:
            skipped_extra.append(f"{exc}; writing a fresh instruction file")
            self.fs.unlink(self.layout.instructions)
            data = b""
        now = self.clock()
        current = parse_instruction_file(data, now)
        keep = [i for i in current.instructions if now - i.issued <= self.lifetime + PRUNE_MARGIN_S]
        pruned = len(current.instructions) - len(keep)
        last = self._last_trusted_id(current.instructions, now)
        stamped: list[Instruction] = []
        unsplittable: list[str] = []
        for text in current.unstamped:
            try:
                selector, command = split_line(text)
            except ValueError as exc:
                unsplittable.append(text)
                skipped_extra.append(f"hand-written line skipped ({exc}): {text[:60]!r}")
                continue
            # Never sign a line found in the file: whoever can write the file could have put it
            # there. Stamped unsigned, agents in signed mode reject it and log why.
            stamped.append(stamp(selector, command, now, last))
            last = stamped[-1].id
        sent: list[Instruction] = []
        for text in lines:
            selector, command = split_line(text)
            sent.append(self._sign(stamp(selector, command, now, last)))
            last = sent[-1].id
        comments = current.comments or instructions_header().rstrip("\n").split("\n")
        comments = [c for c in comments if not c.startswith("# skipped: ")]
        bad_kept = [b.text for b in current.bad if b.line_no > 0] + unsplittable
        text = render_instruction_file(comments, keep + stamped + sent, bad_kept)
        atomic_write(self.layout.instructions, text, self.fs)
        # The shell owns instructions.txt: it also removes what crashed shells left of it.
        remove_old_temp_files(self.layout.root, self.fs, now, {self.layout.instructions.name})
        for ins in sent:
            log.info("sent %s %s", ins.id, ins.text)
        return SendResult(sent, stamped, pruned, [b.describe() for b in current.bad] + skipped_extra)

    def _last_trusted_id(self, instructions: Sequence[Instruction], now: float) -> str | None:
        """The greatest id among the lines this sender can vouch for (Must-hold 3).

        New ids must be greater than the ones agents have run. Only lines we
        could have written count: near our clock (id_in_window), and in signed
        mode carrying our signature. A hand-written id near 2^64 would otherwise
        make every later id overflow or look replayed: signed mode locked out.
        """
        trusted = [i.id for i in instructions
                   if id_in_window(i.id, now) and (self.signer is None or self._signed_by_us(i))]
        return max(trusted, default=None)

    def _signed_by_us(self, ins: Instruction) -> bool:
        if ins.signature is None or self.signer is None:
            return False
        return hmac.compare_digest(self.signer(ins).signature or "", ins.signature)

    def _sign(self, ins: Instruction) -> Instruction:
        return self.signer(ins) if self.signer else ins
