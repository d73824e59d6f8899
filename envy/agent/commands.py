"""Turning an instruction into action: selector match, parse, ledger, dispatch.

Built-ins run at once on the polling thread (they are quick and must work
even while a user function is busy); ``NV.*`` calls are queued for the
command thread so a slow user function never stops the agent from polling.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from envy.agent.context import AgentContext
from envy.agent.user_modules import UserModule, call_user_function
from envy.loop_guard import LoopGuard
from envy.protocol.commands import AGENT_BUILTINS, Call, parse_agent_command

__all__ = ["AGENT_BUILTINS", "BUILTIN_HANDLERS", "CommandRunner", "parse_agent_command"]

log = logging.getLogger(__name__)

class BuiltinTarget(Protocol):
    """What the built-ins act on (the agent, envy/agent/agent.py)."""

    def set_message(self, message: str) -> None: ...

    def stop_work(self) -> None: ...

    def request_quit(self, restart: bool) -> None: ...

    def reload(self) -> None: ...

    def start_render(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None: ...


class UserFunctionHost(Protocol):
    """What the command thread needs: the user's NV module as loaded now, and what its functions see."""

    @property
    def nv_module(self) -> UserModule: ...

    @property
    def context(self) -> AgentContext: ...


def builtin_print(agent: BuiltinTarget, call: Call) -> None:
    sep = call.kwargs.get("sep", " ")
    message = str(sep).join(str(a) for a in call.args)
    log.info("print: %s", message)
    agent.set_message(message)


BUILTIN_HANDLERS: dict[str, Callable[[BuiltinTarget, Call], None]] = {
    "print": builtin_print,
    "stop": lambda agent, call: agent.stop_work(),
    "quit": lambda agent, call: agent.request_quit(restart=False),
    "restart": lambda agent, call: agent.request_quit(restart=True),
    "reload": lambda agent, call: agent.reload(),
    "render": lambda agent, call: agent.start_render(call.args, call.kwargs),
}


class CommandRunner(threading.Thread):
    """Runs NV.* user functions one at a time, off the polling thread."""

    def __init__(self, agent: UserFunctionHost) -> None:
        super().__init__(name="envy-commands", daemon=True)
        self.agent = agent
        self.calls: queue.Queue[Call | None] = queue.Queue()

    def run(self) -> None:
        guard = LoopGuard("the command runner", log)
        while True:
            call = self.calls.get()
            if call is None:
                return
            try:
                self._run_one(call)
                guard.ok()
            except Exception as exc:  # MemoryError, or a bug of ours: the next command still runs
                # No backoff: each call is another command, and the runner sleeps in calls.get() anyway.
                guard.failed(exc)

    def _run_one(self, call: Call) -> None:
        module = self.agent.nv_module
        func = module.functions.get(call.name)
        if func is None:
            reason = f" ({module.error})" if module.error else ""
            log.error("NV.%s is not defined in %s%s", call.name, module.path.name, reason)
            return
        log.info("running %s", call.text)
        try:
            result: Any = call_user_function(func, self.agent.context, call.args, dict(call.kwargs))
        except Exception as exc:
            log.error("%s raised %s: %s", call.qualname, exc.__class__.__name__, exc)
            log.debug("traceback", exc_info=True)
            return
        if result is not None:
            log.info("%s returned %r", call.qualname, result)

    def stop(self) -> None:
        self.calls.put(None)
