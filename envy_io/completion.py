"""Tab completion: selectors (hosts, labs, groups), built-ins, NV./IO. functions, shell commands.

Everything offered comes from memory (the agent board the watcher keeps
fresh, the user's function names), never from a read of the share per key press.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from envy.agent.commands import AGENT_BUILTINS
from envy.protocol.selectors import HostNamePattern

BUILTIN_HELP = {
    "print": "write a message into the agent's log and status",
    "render": "start rendering jobs from the queue",
    "stop": "stop the current work",
    "reload": "re-read settings and Envy_Functions.py",
    "restart": "restart the agent",
    "quit": "stop the agent",
}
SELECTOR_HELP = {"*": "every host", "re:": "hosts whose whole name matches a regular expression"}


@dataclass
class CompletionSources:
    """Where candidates come from; callables so edits and new agents show up without a restart."""

    nv_functions: Callable[[], Mapping[str, str]]  # name -> one-line summary
    io_functions: Callable[[], Mapping[str, str]]
    hosts: Callable[[], Sequence[str]]
    groups: Callable[[], Collection[str]]
    shell_commands: Mapping[str, str]  # name -> help
    host_pattern: HostNamePattern = field(default_factory=HostNamePattern)
    builtins: Collection[str] = AGENT_BUILTINS


class EnvyCompleter(Completer):
    def __init__(self, sources: CompletionSources) -> None:
        self.sources = sources

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        if "(" in before:
            return  # inside the arguments: values are the user's own
        word = document.get_word_before_cursor(WORD=True)
        words = before[: len(before) - len(word)].split()
        for text, meta in self._candidates(words, word):
            if text.lower().startswith(word.lower()) and text != word:
                yield Completion(text, start_position=-len(word), display_meta=meta)

    def _candidates(self, words: list[str], word: str) -> Iterable[tuple[str, str]]:
        src = self.sources
        if not words:
            if word.startswith("IO."):
                return self._functions("IO", src.io_functions())
            return [
                *src.shell_commands.items(),
                *SELECTOR_HELP.items(),
                *((f"{lab} ", f"hosts of {lab}") for lab in self._labs()),
                *((host, "host") for host in src.hosts()),
                *((f"@{g}", "group") for g in sorted(src.groups())),
                *self._functions("IO", src.io_functions()),
            ]
        if words[0].lower() in src.shell_commands:
            return [(host, "host") for host in src.hosts()] if words[0].lower() == "logs" and len(words) == 1 else []
        if word.startswith("NV."):
            return self._functions("NV", src.nv_functions())
        commands = [(f"{name}(", BUILTIN_HELP.get(name, "")) for name in sorted(src.builtins)]
        commands += self._functions("NV", src.nv_functions())
        if len(words) == 1 and words[0].lower() in self._labs():
            # A lab alone selects no host (lab3 print() goes to a host named lab3): offer what completes it.
            is_host = words[0].lower() in {host.lower() for host in src.hosts()}
            return [("*", f"every host of {words[0]}"), *self._numbers(words[0]), *(commands if is_host else [])]
        return commands

    @staticmethod
    def _functions(namespace: str, summaries: Mapping[str, str]) -> list[tuple[str, str]]:
        return [(f"{namespace}.{name}(", summary) for name, summary in sorted(summaries.items())]

    def _labs(self) -> list[str]:
        splits = (self.sources.host_pattern.split(host) for host in self.sources.hosts())
        return sorted({split[0] for split in splits if split})

    def _numbers(self, lab: str) -> list[tuple[str, str]]:
        numbers = set()
        for host in self.sources.hosts():
            split = self.sources.host_pattern.split(host)
            if split and split[0] == lab.lower():
                numbers.add((split[1], host))
        return [(f"{number:02d}", host) for number, host in sorted(numbers)]
