"""Signed mode's status files: sealed with the farm key, so only key holders can speak for a host.

A status file is evidence others act on: a new nonce there means "the owner
restarted, its claims are free", a silent counter "it is dead". Anyone who can
write ``status/`` could forge either (issue 9 Must-hold 10). In signed mode each
agent adds ``sig``: an HMAC-SHA256 with the farm key over a domain tag and the
status's canonical JSON (sorted keys, no spaces). Observers that hold the key
(other agents, Envy IO in signed mode) take an unsealed or changed status for
"not seen this time": it proves neither life nor death, and the judgement
waits for the agent's next real beat.

Replays of a real, older status are the liveness tracker's part: a counter that
goes back or jumps faster than heartbeats allow, or a nonce seen before coming
back, is suspect (envy/protocol/liveness.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

SEAL_FIELD = "sig"
_DOMAIN = b"envy-status-v1\n"  # never verifies as a line or a file signature, nor the reverse


def _canonical(data: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in data.items() if k != SEAL_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class StatusSeal:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, data: Mapping[str, Any]) -> str:
        return hmac.new(self._key, _DOMAIN + _canonical(data), hashlib.sha256).hexdigest()

    def seal(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` with its ``sig``: what the heartbeat writes."""
        return {**{k: v for k, v in data.items() if k != SEAL_FIELD}, SEAL_FIELD: self._mac(data)}

    def problem(self, data: Any) -> str | None:
        """Why ``data`` (a status file's JSON) is not the farm key's, or None when it is."""
        if not isinstance(data, dict):
            return "not a status object"
        sig = data.get(SEAL_FIELD)
        if not isinstance(sig, str):
            return "not sealed with the farm key (signed mode)"
        try:
            expected = self._mac(data)
        except (TypeError, ValueError):
            return "not canonical JSON"
        if not hmac.compare_digest(sig, expected):
            return "its seal does not match (changed, or sealed with another key)"
        return None
