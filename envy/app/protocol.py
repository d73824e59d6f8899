"""Share protocol versions: which agents may work on which share.

The share records the protocol every agent must speak (``app/protocol.json``).
A build speaks a range of protocols. An agent too old for the share (the share
asks for more than it speaks) says so in its status and log and does nothing
else; a newer agent keeps speaking the share's protocol, so an admin raises the
share's protocol only after every agent has moved (``envy app status`` shows
who runs what).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from envy.app.layout import AppLayout
from envy.share.atomic import atomic_write_json
from envy.share.fs import ShareFS
from envy.share.layout import make_dirs_within

# What this code speaks. Raise NEWEST when the share format changes incompatibly;
# raise OLDEST when support for an old format is dropped.
OLDEST_PROTOCOL = 1
NEWEST_PROTOCOL = 1
_MAX_BYTES = 4096


@dataclass(frozen=True)
class ProtocolRange:
    oldest: int = OLDEST_PROTOCOL
    newest: int = NEWEST_PROTOCOL

    def problem_with(self, share_protocol: int, version: str) -> str | None:
        """Why an agent of this build must not work on the share, or None."""
        if share_protocol > self.newest:
            return (
                f"this agent (envy {version}) speaks share protocol {self.oldest}-{self.newest} but the share "
                f"uses protocol {share_protocol}: it is too old and does nothing; start the share's copy "
                f"(app/envy.pyz) or update this machine's Envy"
            )
        if share_protocol < self.oldest:
            return (
                f"this agent (envy {version}) no longer speaks share protocol {share_protocol} "
                f"(oldest it speaks: {self.oldest}): roll the share back or raise its protocol"
            )
        return None


def read_share_protocol(layout: AppLayout, fs: ShareFS) -> int:
    """The share's protocol; 1 when none is recorded (shares made before protocols were)."""
    try:
        raw = fs.read_bytes(layout.protocol)
    except FileNotFoundError:
        return 1
    if len(raw) > _MAX_BYTES:
        raise ValueError(f"{layout.protocol}: larger than {_MAX_BYTES} bytes")
    try:
        value = json.loads(raw.decode("utf-8")).get("protocol")
    except (UnicodeDecodeError, ValueError, AttributeError):
        raise ValueError(f'{layout.protocol}: not a JSON object like {{"protocol": 1}}') from None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layout.protocol}: 'protocol' must be a whole number >= 1, got {value!r}")
    return value


def write_share_protocol(layout: AppLayout, protocol: int, fs: ShareFS) -> None:
    make_dirs_within(layout.share, layout.folder.name)  # never a tree under an unmounted share
    atomic_write_json(layout.protocol, {"protocol": protocol}, fs)
