"""envy.waiting.wait_for: the one condition-with-deadline wait of the demo, the tests and the benchmarks."""

from __future__ import annotations

import pytest

from envy.waiting import WaitTimeout, wait_for


class FakeTime:
    """A clock that only moves when the waiter sleeps, so these tests take no time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_returns_the_first_truthy_value_of_the_condition() -> None:
    t = FakeTime()
    answers = iter([None, [], {"pid": 7}])
    assert wait_for(lambda: next(answers), 5, "a status", 0.5, clock=t.clock, sleep=t.sleep) == {"pid": 7}
    assert t.sleeps == [0.5, 0.5]


def test_a_timeout_names_what_it_waited_for_and_tries_once_more_at_the_deadline() -> None:
    t = FakeTime()
    seen: list[float] = []

    def never() -> bool:
        seen.append(t.now)
        return False

    with pytest.raises(WaitTimeout, match=r"^timed out after 1 s waiting for lab1-01 to heartbeat$"):
        wait_for(never, 1, "lab1-01 to heartbeat", 0.4, clock=t.clock, sleep=t.sleep)
    assert seen[-1] == pytest.approx(101.0)  # the last sleep is cut to the deadline, then one more try
    assert t.sleeps == pytest.approx([0.4, 0.4, 0.2])


def test_a_timeout_is_a_timeout_error() -> None:
    t = FakeTime()
    with pytest.raises(TimeoutError):
        wait_for(lambda: 0, 0, "nothing", clock=t.clock, sleep=t.sleep)


def test_listed_errors_count_as_not_yet_and_the_last_one_is_chained() -> None:
    t = FakeTime()

    def flaky() -> bool:
        raise FileNotFoundError("status.json")

    with pytest.raises(WaitTimeout, match=r"last error: FileNotFoundError: status.json") as caught:
        wait_for(flaky, 1, "the status file", 0.5, retry_on=(OSError,), clock=t.clock, sleep=t.sleep)
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_other_errors_propagate_at_once() -> None:
    t = FakeTime()

    def dead() -> bool:
        raise RuntimeError("sshd exited")

    with pytest.raises(RuntimeError, match="sshd exited"):
        wait_for(dead, 10, "sshd", retry_on=(OSError,), clock=t.clock, sleep=t.sleep)
    assert t.sleeps == []


@pytest.mark.parametrize(("timeout", "interval"), [(-1, 0.1), (1, 0), (1, -0.5)])
def test_a_negative_timeout_or_a_non_positive_interval_is_refused(timeout: float, interval: float) -> None:
    with pytest.raises(ValueError, match="timeout must be >= 0 and interval > 0"):
        wait_for(lambda: True, timeout, "x", interval)
