"""NIMBY settings, decisions and the watcher's transitions (envy/nimby/).

The idle readers are fed recorded OS output here; the real X11 input case
with a real render is in test_nimby_x11.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

from envy.nimby.decide import NICE, PAUSE, RUN, STOP, decide
from envy.nimby.settings import NimbySettingError, NimbySettings, RenderHours
from envy.nimby.watcher import NimbyWatcher
from envy.platform.idle import (
    MachineUse,
    idle_from_ticks,
    parse_ioreg_idle,
    parse_loginctl_idle,
)

NOON = dt.time(12, 0)

# -- recorded OS output ------------------------------------------------------------------------------

# `ioreg -c IOHIDSystem -d 4 -r -k HIDIdleTime` on macOS 14 (trimmed to the entry that matters).
IOREG_OUTPUT = b"""+-o IOHIDSystem  <class IOHIDSystem, id 0x1000002c7, registered, matched, active, busy 0 (0 ms), retain 30>
    {
      "IOClass" = "IOHIDSystem"
      "HIDParameters" = {"HIDClickTime"=500000000,"HIDKeyRepeat"=83333333}
      "HIDIdleTime" = 73516083500
      "IOProviderClass" = "IOResources"
    }
"""  # noqa: E501  (recorded output, kept byte for byte)

# `loginctl show-session 2 5 -p IdleHint -p IdleSinceHint` (systemd 252), two sessions.
LOGINCTL_OUTPUT = b"IdleHint=yes\nIdleSinceHint=1764584400000000\n\nIdleHint=yes\nIdleSinceHint=1764584100000000\n"


def test_windows_ticks_give_seconds_also_across_the_49_day_wrap() -> None:
    # GetTickCount 1 234 567 ms, last input 1 230 000 ms.
    assert idle_from_ticks(1_234_567, 1_230_000) == pytest.approx(4.567)
    # The counter wrapped after the last input (0xFFFFF000 before, 0x00000800 now).
    assert idle_from_ticks(0x00000800, 0xFFFFF000) == pytest.approx((0x800 + 0x1000) / 1000)


def test_macos_hid_idle_time_is_nanoseconds() -> None:
    assert parse_ioreg_idle(IOREG_OUTPUT) == pytest.approx(73.5160835)
    assert parse_ioreg_idle(b"no such key\n") is None


def test_logind_the_least_idle_session_decides() -> None:
    now = 1764584400.0 + 30  # 30 s after the newer hint
    assert parse_loginctl_idle(LOGINCTL_OUTPUT, now) == pytest.approx(30)
    busy = LOGINCTL_OUTPUT + b"\nIdleHint=no\nIdleSinceHint=0\n"
    assert parse_loginctl_idle(busy, now) == 0
    assert parse_loginctl_idle(b"", now) is None


# -- settings ----------------------------------------------------------------------------------------

def test_settings_defaults_and_values() -> None:
    s = NimbySettings.from_values({})
    assert (s.when_in_use, s.idle_after_s, s.cpu_busy_percent, s.render_hours) == ("pause", 600.0, 0.0, None)
    s = NimbySettings.from_values({"when_in_use": "stop", "idle_after": 0.5, "cpu_busy_percent": 40,
                                   "render_hours": "18:00-08:00"})
    assert s.idle_after_s == 30 and str(s.render_hours) == "18:00-08:00"


@pytest.mark.parametrize(("values", "words"), [
    ({"when_in_use": "sleep"}, "'when_in_use' must be one of pause, stop, nice, keep"),
    ({"idle_after": -1}, "'idle_after' must be minutes"),
    ({"idle_after": True}, "'idle_after' must be minutes"),
    ({"cpu_busy_percent": 150}, "'cpu_busy_percent' must be a number from 0 to 100"),
    ({"render_hours": "evenings"}, "'render_hours' must be two different times HH:MM-HH:MM"),
    ({"render_hours": "25:00-08:00"}, "'render_hours' must be two different times"),
    ({"render_hours": "08:00-08:00"}, "'render_hours' must be two different times"),
    ({"render_hours": 18}, "'render_hours' must be text"),
    ({"users_in_use": "yes"}, "'users_in_use' must be true or false"),
])
def test_bad_settings_are_one_line_naming_the_key_and_source(values: dict, words: str) -> None:
    with pytest.raises(NimbySettingError) as err:
        NimbySettings.from_values(values, where="/share/config.yaml")
    assert words in str(err.value) and str(err.value).startswith("/share/config.yaml: ")
    assert "\n" not in str(err.value)


def test_render_hours_overnight_and_daytime() -> None:
    night = RenderHours.parse("18:00-08:00")
    assert night.contains(dt.time(18, 0)) and night.contains(dt.time(2, 0)) and not night.contains(dt.time(8, 0))
    assert not night.contains(NOON)
    day = RenderHours.parse("9:00-17:30")
    assert day.contains(NOON) and not day.contains(dt.time(17, 30))


# -- decisions ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("when", "action"), [("pause", PAUSE), ("stop", STOP), ("nice", NICE), ("keep", RUN)])
def test_input_within_idle_after_means_in_use(when: str, action: str) -> None:
    s = NimbySettings.from_values({"when_in_use": when, "idle_after": 1})
    assert decide(s, MachineUse(input_idle_s=5), NOON).action == action
    assert decide(s, MachineUse(input_idle_s=61), NOON).action == RUN
    assert decide(s, MachineUse(input_idle_s=None), NOON).action == RUN  # cannot tell: other signals decide


def test_status_text_says_someone_is_using_this_machine() -> None:
    s = NimbySettings.from_values({"when_in_use": "pause"})
    assert decide(s, MachineUse(input_idle_s=0), NOON).status_text == "paused: someone is using this machine"


def test_other_users_and_other_programs_cpu_count_as_in_use() -> None:
    s = NimbySettings.from_values({"cpu_busy_percent": 50})
    assert "bob signed in" in decide(s, MachineUse(None, ("bob",)), NOON).reason
    assert decide(NimbySettings.from_values({"users_in_use": False}), MachineUse(None, ("bob",)), NOON).action == RUN
    assert "80% of the CPU" in decide(s, MachineUse(None, (), 80.0), NOON).reason
    assert decide(s, MachineUse(None, (), 20.0), NOON).action == RUN
    assert decide(NimbySettings(), MachineUse(None, (), 99.0), NOON).action == RUN  # 0: check off


def test_outside_render_hours_nothing_renders_even_with_keep() -> None:
    s = NimbySettings.from_values({"when_in_use": "keep", "render_hours": "18:00-08:00"})
    d = decide(s, MachineUse(3600), NOON)
    assert d.action == STOP and d.status_text == "not rendering: outside the render hours 18:00-08:00"
    assert not d.takes_new_frames
    assert decide(s, MachineUse(3600), dt.time(23, 0)).action == RUN


# -- the watcher's transitions (a recording control: the process side is tested for real elsewhere) --

class RecordingControl:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.pids: list[int] = []

    def render_pids(self) -> list[int]:
        return self.pids

    def hold(self, reason: str) -> None:
        self.calls.append("hold")

    def release(self) -> None:
        self.calls.append("release")

    def suspend(self) -> None:
        self.calls.append("suspend")

    def resume(self) -> None:
        self.calls.append("resume")

    def give_back(self, reason: str) -> None:
        self.calls.append("give_back")

    def lowest_priority(self) -> None:
        self.calls.append("lowest")


class Readings:
    def __init__(self, *uses: MachineUse) -> None:
        self.uses = list(uses)

    def read(self, own_pids: object) -> MachineUse:
        return self.uses.pop(0)


def _run(settings: NimbySettings, *uses: MachineUse) -> list[str]:
    control = RecordingControl()
    control.pids = [1]
    watcher = NimbyWatcher(settings, Readings(*uses), control, poll_s=1)
    for _ in uses:
        watcher.poll_once()
    return control.calls


def test_pause_suspends_each_poll_and_resumes_then_releases_when_idle_again() -> None:
    s = NimbySettings.from_values({"when_in_use": "pause", "idle_after": 1})
    calls = _run(s, MachineUse(100), MachineUse(0), MachineUse(1), MachineUse(61))
    assert calls == ["hold", "suspend", "hold", "suspend", "resume", "release"]


def test_stop_gives_back_once_and_releases_when_idle_again() -> None:
    s = NimbySettings.from_values({"when_in_use": "stop", "idle_after": 1})
    calls = _run(s, MachineUse(0), MachineUse(0), MachineUse(61))
    # A render still there at the second poll (started in a race) is given back too.
    assert calls == ["hold", "give_back", "hold", "give_back", "release"]


def test_from_pause_to_stop_resumes_before_giving_back() -> None:
    s = NimbySettings.from_values({"when_in_use": "pause", "idle_after": 1, "render_hours": "18:00-08:00"})
    control = RecordingControl()
    control.pids = [1]
    times = iter([dt.time(7, 59), dt.time(8, 0)])
    watcher = NimbyWatcher(s, Readings(MachineUse(0), MachineUse(0)), control, poll_s=1, clock=lambda: next(times))
    watcher.poll_once()
    watcher.poll_once()
    assert control.calls == ["hold", "suspend", "resume", "hold", "give_back"]


def test_config_keys_validate_one_by_one_and_build_settings() -> None:
    from types import SimpleNamespace

    from envy.nimby.settings import KEY_DEFAULTS, nimby_settings, validate_key

    assert validate_key("idle_after", 2, "f.yaml") == 2.0
    assert validate_key("render_hours", " 18:00-08:00 ", "f.yaml") == "18:00-08:00"
    with pytest.raises(NimbySettingError, match="f.yaml: 'when_in_use'"):
        validate_key("when_in_use", "later", "f.yaml")
    config = SimpleNamespace(**{**KEY_DEFAULTS, "when_in_use": "stop", "idle_after": 0.5})
    assert nimby_settings(config) == NimbySettings(when_in_use="stop", idle_after_s=30.0)


def test_logind_is_asked_at_most_every_interval_and_not_again_where_missing() -> None:
    from envy.platform.idle import LogindInputIdle

    calls: list[list[str]] = []

    def recorded(argv: list[str]) -> bytes:
        calls.append(argv)
        return b"2 1000 student seat0 tty2\n" if argv[1] == "list-sessions" else LOGINCTL_OUTPUT

    reader = LogindInputIdle(recorded, min_interval_s=3600)
    first = reader()
    assert first is not None and first > 0
    assert reader() is not None and len(calls) == 2  # the second answer is extrapolated, not asked
    missing: list[list[str]] = []

    def no_logind(argv: list[str]) -> bytes | None:
        missing.append(argv)
        return None

    gone = LogindInputIdle(no_logind, min_interval_s=0)  # type: ignore[arg-type]
    assert gone() is None and gone() is None and len(missing) == 1
