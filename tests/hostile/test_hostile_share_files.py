"""A FIFO or a huge file in place of the instruction file (Must-hold 5), against real agents."""

from __future__ import annotations

import os

from farm import Farm, wait_for


def printed(farm: Farm, host: str, text: str) -> bool:
    return f"print: {text}" in farm.log(host)


def test_a_fifo_instead_of_the_instruction_file_neither_hangs_the_agent_nor_envy_io(farm: Farm) -> None:
    agent = farm.start_agent("lab1-01")
    farm.wait_heartbeat(agent)
    path = farm.layout.instructions
    path.unlink()
    os.mkfifo(path)  # the poll used to block in open() for ever while the heartbeat looked healthy
    wait_for(lambda: "FIFO" in farm.log("lab1-01"), 20, "the agent to refuse the FIFO in its log")
    # Envy IO replaces the FIFO with a fresh file instead of blocking on it too.
    farm.send("* print('after the fifo')")
    assert path.is_file()
    wait_for(lambda: printed(farm, "lab1-01", "after the fifo"), 20, "the agent to answer again")
    assert agent.alive()


def test_a_2_gb_sparse_instruction_file_costs_no_memory_and_is_skipped_with_one_warning(farm: Farm) -> None:
    agent = farm.start_agent("lab1-01")
    farm.wait_heartbeat(agent)
    with open(farm.layout.instructions, "r+b") as f:
        f.truncate(2 * 1024**3)  # used to cost 2 GB of memory per change, then a MemoryError killed the agent
    wait_for(lambda: "larger than the 4 MiB" in farm.log("lab1-01"), 20, "the warning about the huge file")
    farm.send("* print('after the huge file')")
    assert farm.layout.instructions.stat().st_size < 1024**2
    wait_for(lambda: printed(farm, "lab1-01", "after the huge file"), 20, "the agent to answer again")
    assert farm.count_in_log("lab1-01", "larger than the 4 MiB") == 1
    assert agent.alive()
