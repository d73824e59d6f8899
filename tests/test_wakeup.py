"""The early wake-up wakes the poll on changes of instructions.txt only, never on the poll's own reads."""

from __future__ import annotations

from watchdog.events import (
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from envy.agent.wakeup import wakes_the_poll

PATH = "/share/instructions.txt"


def test_changes_of_the_instruction_file_wake_the_poll() -> None:
    assert wakes_the_poll(FileModifiedEvent(PATH))
    assert wakes_the_poll(FileCreatedEvent(PATH))
    assert wakes_the_poll(FileClosedEvent(PATH))
    assert wakes_the_poll(FileMovedEvent("/share/.instructions.txt.envy-tmp-0123456789ab", PATH))


def test_the_polls_own_open_and_read_do_not_wake_it() -> None:
    assert not wakes_the_poll(FileOpenedEvent(PATH))
    assert not wakes_the_poll(FileClosedNoWriteEvent(PATH))


def test_other_files_do_not_wake_it() -> None:
    assert not wakes_the_poll(FileModifiedEvent("/share/status/lab1-01.json"))
