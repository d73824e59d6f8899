"""The instruction file reader and writer: format, stamping, pruning; no input crashes the reader."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from envy.protocol.instructions import Instruction, parse_instruction_file
from envy.protocol.sender import InstructionSender
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share


@settings(max_examples=300, deadline=500)
@given(st.binary(max_size=4096))
def test_reader_never_crashes_on_bytes(data: bytes) -> None:
    parsed = parse_instruction_file(data)
    assert all(isinstance(i, Instruction) for i in parsed.instructions)


STAMP = st.builds(
    lambda ms, r: f"[{ms:012x}{r:04x} 2026-11-21T11:49:53.043Z] ", st.integers(0, 2**48 - 1), st.integers(0, 2**16 - 1)
)


@settings(max_examples=300, deadline=500)
@given(
    st.lists(st.one_of(st.text(max_size=200), st.builds(lambda s, t: s + t, STAMP, st.text(max_size=200))), max_size=30)
)
def test_reader_never_crashes_on_lines(lines: list[str]) -> None:
    parsed = parse_instruction_file("\n".join(lines).encode("utf-8", "surrogatepass"))
    for ins in parsed.instructions:
        assert ins.selector and ins.command and len(ins.id) == 16


def test_round_trip_stamp_prune_and_hand_written_lines(tmp_path: Path) -> None:
    init_share(tmp_path / "s", "ana", fs=REAL_FS)
    layout = ShareLayout(tmp_path / "s")
    now = [time.time()]
    sender = InstructionSender(layout, lifetime=600, clock=lambda: now[0], fs=REAL_FS)
    first = sender.send(["lab3 * print('a')"]).sent[0]
    with open(layout.instructions, "a", encoding="utf-8") as f:
        f.write("lab3 04 print('typed by hand')\nnonsense without a call\n")
    now[0] += 700  # the first command is now older than its lifetime plus the margin
    result = sender.send(["* print('b')"])
    parsed = parse_instruction_file(layout.instructions.read_bytes())
    texts = [i.text for i in parsed.instructions]
    assert texts == ["lab3 04 print('typed by hand')", "* print('b')"]
    assert result.pruned == 1 and first.text not in texts
    assert any("nonsense without a call" in s for s in result.skipped)
    assert "# skipped: nonsense without a call" in layout.instructions.read_text()
    ids = [i.id for i in parsed.instructions]
    assert ids == sorted(ids) and len(set(ids)) == 2
