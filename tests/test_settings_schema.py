"""The settings schema (envy/settings): kinds of values, unknown keys, nesting, errors naming key
and file; defaults declared once; the generated key reference matches docs/config-reference.md;
and hostile values from YAML/JSON never raise anything but the file's own error class."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envy.config import CONFIG_KEYS, DEFAULTS, Config, ConfigError, load_config
from envy.houdini.schema import CACHE_JOB_KEYS, CacheJob, CacheJobError, cache_job_from_json, load_cache_job
from envy.policy.rules import POLICY_KEYS, Policy, PolicyError, parse_policy
from envy.render.profiles import PROFILE_KEYS, ProfileError, RendererProfile, load_profiles, parse_profile
from envy.settings.kinds import (
    Choice,
    Flag,
    ListOf,
    MapOf,
    Number,
    Optional,
    Record,
    Text,
    TextList,
    Whole,
)
from envy.settings.reference import reference_text
from envy.settings.schema import REQUIRED, Key, Rule, Schema, schema_of, setting

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "config-reference.md"


class SampleError(ValueError):
    pass


WINDOW = Schema("window", [Key("hours", Text()), Key("machines", Whole(ge=0), 1, "How many.")], SampleError)
SAMPLE = Schema("sample", [
    Key("size", Number(gt=0), 1.0, "How big."),
    Key("count", Whole(ge=1, le=9), 1),
    Key("colour", Choice("red", "green"), "red"),
    Key("on", Flag(), False),
    Key("name", Text("a name like 'ana'", pattern=r"^[a-z]+$")),
    Key("tags", TextList(), ()),
    Key("note", Optional(Text()), None),
    Key("windows", ListOf(Record(WINDOW, "a window"), "a list of windows"), ()),
    Key("people", MapOf(Record(WINDOW, "a window", fill_defaults=True), "a mapping of names to windows"),
        MappingProxyType({})),
], SampleError, rules=[Rule("count above 5 needs on.", lambda v: "'count' above 5 needs 'on'"
                            if v.get("count", 1) > 5 and not v.get("on") else None)])


def error_of(data: object, where: str = "/etc/sample.yaml") -> str:
    with pytest.raises(SampleError) as caught:
        SAMPLE.parse(data, where)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(where + ":") and "\n" not in message
    return message


# -- kinds ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "expected"), [
    ({"name": "a", "size": 0}, "'size' must be a number greater than 0, got 0"),
    ({"name": "a", "size": True}, "'size' must be a number greater than 0, got True"),
    ({"name": "a", "size": "2"}, "'size' must be a number greater than 0, got '2'"),
    ({"name": "a", "size": float("nan")}, "'size' must be a number greater than 0"),
    ({"name": "a", "size": 10**400}, "'size' must be a number greater than 0"),
    ({"name": "a", "count": 10}, "'count' must be a whole number from 1 to 9, got 10"),
    ({"name": "a", "count": 2.0}, "'count' must be a whole number from 1 to 9, got 2.0"),
    ({"name": "a", "colour": "blue"}, "'colour' must be one of 'red', 'green', got 'blue'"),
    ({"name": "a", "on": "yes"}, "'on' must be true or false, got 'yes'"),
    ({"name": "Ana"}, "'name' must be a name like 'ana', got 'Ana'"),
    ({"name": "a", "tags": "x"}, "'tags' must be a list of text items, got 'x'"),
    ({"name": "a", "note": 3}, "'note' must be text, got 3"),
])
def test_each_kind_refuses_with_the_key_and_what_is_allowed(data: dict, expected: str) -> None:
    assert expected in error_of(data)


def test_clean_values_and_defaults() -> None:
    values = SAMPLE.parse({"name": "ana", "size": 2, "tags": None, "count": 6, "on": True}, "f")
    assert values["size"] == 2.0 and isinstance(values["size"], float)
    assert values["tags"] == () and values["note"] is None and values["colour"] == "red"
    assert SAMPLE.parse({"name": "ana"}, "f", fill_defaults=False) == {"name": "ana"}


def test_a_long_bad_value_is_quoted_short_on_one_line() -> None:
    message = error_of({"name": "a", "note": ["x\n" * 10_000]})
    assert len(message) < 200 and message.endswith("...")


# -- unknown and missing keys ---------------------------------------------------------------------
def test_unknown_key_lists_the_known_ones_and_suggests_the_closest() -> None:
    message = error_of({"name": "a", "colur": "red"})
    assert "unknown key 'colur' (known keys: size, count, colour, on, name," in message
    assert message.endswith("did you mean 'colour'?")
    assert "did you mean" not in error_of({"name": "a", "zzzz": 1})
    assert "unknown key '3'" in error_of({3: 1})


def test_missing_required_key_says_which_and_why() -> None:
    assert error_of({"size": 1}).endswith("missing key 'name'")
    assert "missing key 'hip' (the HIP file, as the submitter's machine writes it" in str(
        _raises(CacheJobError, cache_job_from_json, {})
    )


# -- nesting --------------------------------------------------------------------------------------
def test_nested_records_name_the_whole_key_path() -> None:
    assert "'windows[1].machines' must be a whole number >= 0, got -1" in error_of(
        {"name": "a", "windows": [{"hours": "x"}, {"hours": "y", "machines": -1}]})
    assert "'windows[0]' lacks 'hours'" in error_of({"name": "a", "windows": [{"machines": 1}]})
    assert "unknown key 'people.bob.hour' (known keys: hours, machines); did you mean 'hours'?" in error_of(
        {"name": "a", "people": {"bob": {"hour": "x"}}})
    assert "'people.bob' must be a window, got 3" in error_of({"name": "a", "people": {"bob": 3}})
    assert "'windows' must be a list of windows" in error_of({"name": "a", "windows": {"a": 1}})


def test_nested_values_are_read_only_and_filled_where_asked() -> None:
    values = SAMPLE.parse({"name": "a", "windows": [{"hours": "x"}], "people": {"bob": {"hours": "y"}}}, "f")
    assert dict(values["windows"][0]) == {"hours": "x"}  # no fill: only what the file gave
    assert dict(values["people"]["bob"]) == {"hours": "y", "machines": 1}
    with pytest.raises(TypeError):
        values["people"]["eve"] = {}  # type: ignore[index]


def test_rules_tie_keys_together() -> None:
    assert error_of({"name": "a", "count": 6}).endswith("'count' above 5 needs 'on'")


# -- the four files use it ------------------------------------------------------------------------
@pytest.mark.parametrize(("schema", "cls"), [
    (CONFIG_KEYS, Config), (PROFILE_KEYS, RendererProfile), (POLICY_KEYS, Policy), (CACHE_JOB_KEYS, CacheJob),
])
def test_each_key_is_declared_once_on_its_dataclass(schema: Schema, cls: type) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, key in schema.keys.items():
        field = fields[name]
        declared = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        assert declared is key.default or (key.required and declared is dataclasses.MISSING), name
        assert key.help, f"{name} has no help text"


def test_config_defaults_are_the_schema_defaults_and_config_is_a_frozen_value() -> None:
    cfg = Config()
    assert {name: getattr(cfg, name) for name in DEFAULTS} == dict(DEFAULTS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.workers = 3  # type: ignore[misc]
    changed = cfg.with_values({"groups": {"Seniors": ["lab3 1-4"]}}, "command line")
    assert changed is not cfg and cfg.groups == {} and changed.groups == {"seniors": ("lab3 1-4",)}
    with pytest.raises(TypeError):
        changed.groups["x"] = ()  # type: ignore[index]


def test_user_template_shows_every_config_key_with_its_default() -> None:
    text = (resources.files("user_template") / "config.yaml").read_text()
    shown = {m[1]: m[2] for m in re.finditer(r"^# (\w+): (.+)$", text, re.M) if m[1] in CONFIG_KEYS.keys}
    for name, default in DEFAULTS.items():
        if name in ("share", "policy", "groups", "renderers"):  # shown with an example instead
            assert f"# {name}:" in text
            continue
        assert yaml.safe_load(shown[name]) == (list(default) if isinstance(default, tuple) else default), name


def test_setting_refuses_a_mutable_default() -> None:
    with pytest.raises(TypeError, match="mutable"):
        setting([], TextList(), "x")


def test_schema_of_reads_the_declared_fields_in_order() -> None:
    @dataclass(frozen=True)
    class Job:
        path: str
        hip: str = setting(REQUIRED, Text(), "The HIP file.")
        wedges: int = setting(1, Whole(ge=1), "How many.")

    schema = schema_of(Job, "Job", SampleError)
    assert list(schema.keys) == ["hip", "wedges"] and schema.defaults() == {"wedges": 1}
    assert Job(path="p", **schema.parse({"hip": "a.hip"}, "job.json")).wedges == 1


def test_config_errors_name_the_key_and_each_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^command line: 'workers' must be a whole number >= 1, got 0$"):
        load_config(config_file=None, overrides={"workers": 0}, env={"HOME": str(tmp_path)})
    bad = tmp_path / "c.yaml"
    bad.write_text("heartbeet: 1\n")
    with pytest.raises(ConfigError, match=r"did you mean 'heartbeat'\?"):
        load_config(config_file=str(bad), env={})
    bad.write_text("[" * 2000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(config_file=str(bad), env={})


# -- the reference --------------------------------------------------------------------------------
def test_committed_reference_matches_the_declared_keys() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == reference_text(), (
        "docs/config-reference.md is out of date: python -m envy.settings.reference > docs/config-reference.md")


def test_reference_lists_every_key_with_kind_default_and_help() -> None:
    text = reference_text()
    for schema in (CONFIG_KEYS, PROFILE_KEYS, POLICY_KEYS, CACHE_JOB_KEYS):
        assert f"## {schema.title}" in text
        for name in schema.keys:
            assert f"| `{name}` |" in text
    assert "| `workers` | a whole number >= 1 | `1` | Renders at the same time on one machine. |" in text
    assert "| `limits[].hours` |" in text and "| `users.<user>.machines` |" in text
    assert "dead_after must be more than twice heartbeat." in text


# -- hostile values -------------------------------------------------------------------------------
def _raises(error: type[Exception], fn: object, *args: object) -> Exception:
    with pytest.raises(error) as caught:
        fn(*args)  # type: ignore[operator]
    return caught.value


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["{scene}", "{output}", "{frame:04d}", "{x}", "{", "(?P<pct>\\d+)", "(", ".exr", "/obj/a",
                     "a.hip", "00:00-22:00", "22:00-07:00", "25:00-26:00", "unlimited", "lab3 1-4", "Z:/,/mnt/"]),
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(
    ["name", "extensions", "argv", "executables", "linux", "hip", "node", "parms", "limits", "hours",
     "machines", "users", "blacklist", "check_every", "groups", "renderers", "executable", "heartbeat"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=20)


def _with_keys(schema: Schema) -> st.SearchStrategy[dict]:
    """Mappings that mostly use the schema's own keys, so the values are what gets tested."""
    return st.dictionaries(st.sampled_from(list(schema.keys)) | keys, values, max_size=6)


HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(_with_keys(CONFIG_KEYS) | values)
def test_random_config_values_raise_only_config_errors(data: object) -> None:
    try:
        Config().with_values(data if isinstance(data, dict) else {"groups": data}, "random.yaml")
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("random.yaml")


@HYPOTHESIS
@given(_with_keys(PROFILE_KEYS) | values)
def test_random_profile_values_raise_only_profile_errors(data: object) -> None:
    try:
        parse_profile(data, "random.yaml")
    except ProfileError as exc:
        assert "\n" not in str(exc)


@HYPOTHESIS
@given(_with_keys(POLICY_KEYS) | values)
def test_random_policy_values_raise_only_policy_errors(data: object) -> None:
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    try:
        parse_policy(text.encode(), "policy.yaml")
    except PolicyError as exc:
        assert "\n" not in str(exc)


@HYPOTHESIS
@given(_with_keys(CACHE_JOB_KEYS) | values)
def test_random_cache_job_values_raise_only_cache_job_errors(data: object) -> None:
    try:
        cache_job_from_json(data, "job.json")
    except CacheJobError as exc:
        assert "\n" not in str(exc)


@HYPOTHESIS
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_random_file_bytes_raise_only_each_files_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("random")
    (folder / "c.yaml").write_bytes(data)
    (folder / "p.yaml").write_bytes(data)
    (folder / "job.json").write_bytes(data)
    for error, read in ((ConfigError, lambda: load_config(config_file=str(folder / "c.yaml"), env={})),
                        (ProfileError, lambda: load_profiles([folder / "p.yaml"])),
                        (PolicyError, lambda: parse_policy(data, "policy.yaml")),
                        (CacheJobError, lambda: load_cache_job(folder / "job.json"))):
        try:
            read()
        except error as exc:
            assert "\n" not in str(exc)


def test_json_cache_job_nested_too_deeply_is_a_cache_job_error(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text("[" * 100_000)
    assert "nested too deeply" in str(_raises(CacheJobError, load_cache_job, path))
    assert json.loads(json.dumps({"hip": "a.hip", "node": "/obj/a"}))  # and a good one still loads
