"""One way to describe the keys of a settings file: name, kind of value, default, help.

Envy reads four kinds of key-value files: the farm config (``envy/config.py``),
renderer profiles (``envy/render/profile_keys.py``), cache jobs
(``envy/houdini/schema.py``) and the lockdown policy (``envy/policy/rules.py``).
Each declares its keys once, here-style::

    @dataclass(frozen=True)
    class Config:
        workers: int = setting(1, Whole(ge=1), "Renders at the same time on one machine.")

    CONFIG_KEYS = schema_of(Config, "Farm config", ConfigError)

The declaration is the only place the default lives: the dataclass field's
default, the reference in docs/config-reference.md and the checks all come
from it. ``Schema.clean`` checks a mapping read from a file: unknown keys (with
a "did you mean"), missing required keys, each value's kind, then the rules
that tie keys together. Every error is one line, "<file>: '<key>' ...", raised
as the file's own error class.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from envy.settings.kinds import Kind, Source

_SETTING = "envy.setting"  # the dataclass field metadata key that holds a key's declaration


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a key that has none: the file must give it."""


@dataclass(frozen=True)
class Key:
    """One settings key. ``help`` is a sentence or two in users' words, for the reference."""

    name: str
    kind: Kind
    default: Any = REQUIRED
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Rule:
    """A check across keys. ``problem(values)`` returns the error text (after the file and the
    record's key), or None when the values are fine; ``text`` states the rule in the reference.
    ``values`` are the cleaned values, with defaults only when the schema filled them in."""

    text: str
    problem: Callable[[Mapping[str, Any]], str | None]


class Schema:
    """The keys of one kind of file, in the order the reference and error messages list them."""

    def __init__(self, title: str, keys: Sequence[Key], error: type[Exception], *,
                 known_label: str = "known keys", rules: Sequence[Rule] = ()) -> None:
        self.title = title
        self.keys = {key.name: key for key in keys}
        if len(self.keys) != len(keys):
            raise ValueError(f"{title}: a key is declared twice")
        self.error = error
        self.known_label = known_label  # the words before the list of keys in an unknown-key error
        self.rules = tuple(rules)

    # -- reading ------------------------------------------------------------------------------
    def parse(self, data: Mapping[Any, Any], where: str, *, fill_defaults: bool = True) -> dict[str, Any]:
        """Check ``data`` read from ``where`` (a file name, "command line"); the clean values."""
        return self.clean(data, Source(where, self.error), fill_defaults=fill_defaults)

    def clean(self, data: Mapping[Any, Any], source: Source, *, prefix: str = "",
              fill_defaults: bool = True, rules: bool = True) -> dict[str, Any]:
        """The clean values of ``data``; ``prefix`` is the key of the record it is nested in."""
        dotted = f"{prefix}." if prefix else ""
        self.check_known(data, source, prefix=prefix)
        for key in self.keys.values():
            if key.required and key.name not in data:
                hint = f" ({_first_sentence(key.help)})" if key.help else ""
                if prefix:
                    source.fail(prefix, f"lacks '{key.name}'{hint}")
                source.fail_text(f"missing key '{key.name}'{hint}")
        values = {name: self.keys[name].kind.check(value, dotted + name, source) for name, value in data.items()}
        if fill_defaults:
            for key in self.keys.values():
                values.setdefault(key.name, key.default)
        if rules:
            self.check_rules(values, source, prefix=prefix)
        return values

    def check_known(self, data: Mapping[Any, Any], source: Source, *, prefix: str = "") -> None:
        """Fail on the first key of ``data`` this schema does not declare, suggesting a close one."""
        dotted = f"{prefix}." if prefix else ""
        for name in data:
            if not isinstance(name, str) or name not in self.keys:
                source.fail_text(f"unknown key '{dotted}{name}' ({self.known_label}: "
                                 f"{', '.join(self.keys)}){self._did_you_mean(name)}")

    def check_rules(self, values: Mapping[str, Any], source: Source, *, prefix: str = "") -> None:
        for rule in self.rules:
            problem = rule.problem(values)
            if problem is not None:
                source.fail_text(f"'{prefix}' {problem}" if prefix else problem)

    def _did_you_mean(self, name: Any) -> str:
        close = difflib.get_close_matches(str(name), list(self.keys), n=1, cutoff=0.6)
        return f"; did you mean '{close[0]}'?" if close else ""

    # -- defaults and the reference -------------------------------------------------------------
    def defaults(self) -> dict[str, Any]:
        """Each key that has a default, with it."""
        return {key.name: key.default for key in self.keys.values() if not key.required}

    def rows(self) -> Iterator[tuple[str, Kind, Any, str]]:
        """(key, kind, default, help) for every key, nested keys after their parent
        (``limits[].hours``, ``users.<user>.machines``)."""
        for key in self.keys.values():
            yield key.name, key.kind, key.default, key.help
            for suffix, kind, default, help_text in key.kind.parts():
                yield key.name + suffix, kind, default, help_text

    def reference(self, intro: str = "", level: int = 2) -> str:
        """A Markdown section listing every key: its value, default and meaning."""
        lines = ["#" * level + " " + self.title, ""]
        if intro:
            lines += [intro.strip(), ""]
        lines += ["| Key | Value | Default | Meaning |", "| --- | --- | --- | --- |"]
        for name, kind, default, help_text in self.rows():
            cells = (f"`{name}`", _prose(kind.wanted), show_default(default), _prose(" ".join(help_text.split())))
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        if self.rules:
            lines += ["", "Rules across keys:", ""]
            lines += [f"- {rule.text}" for rule in self.rules]
        return "\n".join(lines) + "\n"


def show_default(value: Any) -> str:
    """A default as it would be written in YAML, e.g. ``2.0``, ``[]``, ``true``; "required"."""
    if value is REQUIRED:
        return "required"
    if value is None:
        return "(none)"
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return f"`{text}`"


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list, frozenset, set)):
        return [_plain(v) for v in (sorted(value) if isinstance(value, (set, frozenset)) else value)]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _prose(text: str) -> str:
    # Markdown would read (?P<pct>...) as an HTML tag; code spans (defaults, keys) need no escape.
    return text.replace("<", "\\<")


def _first_sentence(text: str) -> str:
    sentence = " ".join(text.split()).split(". ")[0]
    return sentence.rstrip(".")[:1].lower() + sentence.rstrip(".")[1:]


# -- keys declared on a frozen dataclass ----------------------------------------------------------
def setting(default: Any, kind: Kind, help: str, **field_options: Any) -> Any:
    """A dataclass field that is also a settings key: its default, kind and help, once.

    Defaults must be immutable (a tuple, a frozenset, a read-only mapping): a config object is a
    value that threads share and ``reload()`` replaces whole.
    """
    if isinstance(default, (dict, list, set)):
        raise TypeError(f"setting default {default!r} is mutable; use a tuple, frozenset or MappingProxyType")
    metadata = {_SETTING: (kind, default, help)}
    if default is REQUIRED:
        return dataclasses.field(metadata=metadata, **field_options)
    if isinstance(default, Mapping):  # read-only, but dataclasses refuse any unhashable default
        return dataclasses.field(default_factory=lambda: default, metadata=metadata, **field_options)
    return dataclasses.field(default=default, metadata=metadata, **field_options)


def schema_of(cls: type, title: str, error: type[Exception], **options: Any) -> Schema:
    """The schema of the ``setting(...)`` fields of dataclass ``cls``, in field order."""
    keys = [Key(f.name, *f.metadata[_SETTING]) for f in dataclasses.fields(cls) if _SETTING in f.metadata]
    return Schema(title, keys, error, **options)
