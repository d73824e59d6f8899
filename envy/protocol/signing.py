"""Signed mode: agents run only instruction lines signed with a key kept off the share.

A line carries ``sig=`` followed by 64 hex digits in its stamp::

    [0196a3f2c4e81b2c 2026-11-21T11:42:00.123Z sig=5d1f...] lab3 03 render()

The signature is HMAC-SHA256, with the user's secret key, over the id, the
issue time (as written), the selector and the command. In signed mode an
agent runs a line addressed to it only when

* it is signed at all (*unsigned* lines are rejected),
* the signature verifies (*tampered* lines, or lines signed with another key,
  are rejected),
* its id is newer than the last one this agent ran (*replayed* lines are
  rejected; the last id is kept in the agent's local state folder, so it
  survives restarts), and
* it is younger than ``command_lifetime`` (*expired* lines are rejected).

Every rejection is logged once per line. The key is 32 random bytes written
as hex in ``signing.key`` in Envy's local state folder (or the file named by
``ENVY_SIGNING_KEY``), readable only by its owner, never on the share:
whoever can read it can command the agents. ``envy-io keygen`` makes it;
docs/admin-guide.md says how to place it on each machine.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat as stat_mod
from collections.abc import Callable, Mapping
from pathlib import Path

from envy.platform.host import local_dirs, os_name
from envy.protocol.instructions import Instruction, format_time, id_problem

log = logging.getLogger(__name__)

KEY_ENV = "ENVY_SIGNING_KEY"
KEY_FILE = "signing.key"
LAST_ID_FILE = "signed-last-id"
KEY_BYTES = 32
_DOMAIN = b"envy-instruction-v1"  # a signature made for anything else never verifies here

Signer = Callable[[Instruction], Instruction]


class SigningError(ValueError):
    """No usable key: one line saying where the key was looked for and what to do."""


# -- the key -------------------------------------------------------------------------------
def default_key_path(env: Mapping[str, str] | None = None, state_dir: Path | None = None) -> Path:
    """``$ENVY_SIGNING_KEY`` if set, else ``signing.key`` in Envy's local state folder.

    The agent passes the state folder it resolved at start; ``envy-io keygen``
    lets it be found from the environment here.
    """
    env = os.environ if env is None else env
    override = env.get(KEY_ENV)
    if override:
        return Path(override)
    return (state_dir if state_dir is not None else local_dirs().state) / KEY_FILE


def keygen(path: Path | None = None, share: str | os.PathLike[str] | None = None) -> Path:
    """Write a new random key to ``path`` (default: default_key_path()), readable only by its owner.

    Never overwrites: a new key makes every agent that has the old one reject
    new commands, so replacing a key is a deliberate delete-then-keygen.
    Refuses a place inside ``share`` (the Envy folder).
    """
    path = default_key_path() if path is None else path
    if share is not None and _is_inside(path, Path(share)):
        raise SigningError(f"{path} is inside the share {share}: keep the signing key off the share")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except FileExistsError:
        raise SigningError(
            f"{path} already exists; agents that have it would reject commands signed with a new key. "
            "Delete it first if you really want a new one"
        ) from None
    try:
        os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def load_key(path: Path | None = None, share: str | os.PathLike[str] | None = None) -> bytes:
    """Read the key; SigningError if it is missing, malformed, on the share, or readable by others."""
    path = default_key_path() if path is None else path
    if share is not None and _is_inside(path, Path(share)):
        raise SigningError(
            f"{path}: the signing key must not be on the share (anyone who can read it can command your agents)"
        )
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise SigningError(
            f"signed mode is on but there is no key at {path}: make one with 'envy-io keygen' "
            f"and copy it to each machine, or set {KEY_ENV} (see docs/admin-guide.md)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningError(f"{path}: cannot read the signing key ({exc})") from None
    if os_name() != "windows" and st.st_mode & (stat_mod.S_IRWXG | stat_mod.S_IRWXO):
        raise SigningError(
            f"{path}: other users can read the signing key (mode {stat_mod.S_IMODE(st.st_mode):04o}); "
            f"fix with: chmod 600 '{path}'"
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise SigningError(
            f"{path}: not an Envy signing key ({KEY_BYTES * 2} hex digits); make one with 'envy-io keygen'"
        )
    return key


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True


# -- signing and checking ------------------------------------------------------------------
def signature(key: bytes, ins: Instruction) -> str:
    """HMAC-SHA256 over id, issue time (as written in the stamp), selector and command."""
    fields = (_DOMAIN, ins.id.encode(), format_time(ins.issued).encode(), ins.selector.encode("utf-8"),
              ins.command.encode("utf-8"))
    return hmac.new(key, b"\n".join(fields), hashlib.sha256).hexdigest()


def make_signer(key: bytes) -> Signer:
    """The signer Envy IO passes to InstructionSender."""

    def sign(ins: Instruction) -> Instruction:
        return Instruction(ins.id, ins.issued, ins.selector, ins.command, signature(key, ins), ins.line_no)

    return sign


def signature_ok(key: bytes, ins: Instruction) -> bool:
    return ins.signature is not None and hmac.compare_digest(ins.signature, signature(key, ins))


class LastRunId:
    """The id of the last signed command this agent ran, kept on the local disk (replay protection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.value = self._load()

    def _load(self) -> str | None:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning(
                "signed mode: %s unreadable (%s); only the command lifetime guards against replays now", self.path, exc
            )
            return None
        if len(text) == 16 and all(c in "0123456789abcdef" for c in text):
            return text
        log.warning("signed mode: %s does not hold an id; starting afresh", self.path)
        return None

    def newer(self, command_id: str) -> bool:
        return self.value is None or command_id > self.value  # fixed-width hex: text order is number order

    def record(self, command_id: str) -> None:
        self.value = command_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="ascii") as f:
            f.write(command_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class SignedInstructions:
    """The agent's check in signed mode (``Agent.verify``): True only for a line it may run now."""

    def __init__(self, key: bytes, last: LastRunId, lifetime: float | Callable[[], float], clock: Callable[[], float],
                 report: Callable[[str], None]) -> None:
        self.key = key
        self.last = last
        # A number, or a callable read at each check (the agent's live config: reload() reaches it).
        self._lifetime = lifetime
        self.clock = clock
        self.report = report  # logs a message once (Agent.report_once)

    def __call__(self, ins: Instruction) -> bool:
        problem = self.problem(ins)
        if problem is not None:
            self.report(
                f"signed mode: rejected instruction line {ins.line_no} (id {ins.id}, {ins.text[:60]!r}): {problem}"
            )
            return False
        self.last.record(ins.id)
        return True

    @property
    def lifetime(self) -> float:
        return self._lifetime() if callable(self._lifetime) else self._lifetime

    def authentic(self, ins: Instruction) -> bool:
        """Signed with our key and unchanged: checked before the selector is even parsed (Must-hold 4),
        so nobody without the key gets a selector of theirs matched at all. Says nothing (the lines
        for other hosts are not ours to report)."""
        return signature_ok(self.key, ins)

    def problem(self, ins: Instruction) -> str | None:
        if ins.signature is None:
            return "unsigned"
        if not signature_ok(self.key, ins):
            return "bad signature (tampered with, or signed with another key)"
        bad_id = id_problem(ins, self.clock())
        if bad_id is not None:
            return bad_id
        age = self.clock() - ins.issued
        if age > self.lifetime:
            return f"expired (issued {age:.0f} s ago; commands live {self.lifetime:g} s)"
        if not self.last.newer(ins.id):
            return f"replayed (id not newer than {self.last.value}, the last one this agent ran)"
        return None


def signing_check(signed: bool, share: str | None, lifetime: Callable[[], float], key_path: Path, state_dir: Path,
                  clock: Callable[[], float], report: Callable[[str], None]) -> SignedInstructions | None:
    """The signed-mode check when the config says ``signed: true`` (else None); SigningError without a usable key.

    ``signed`` and ``share`` come from the config at start (turning signed mode
    on or off takes a restart()); ``lifetime`` gives the command lifetime now
    (read at each check, so a reload() reaches it).
    ``state_dir`` is the agent's own local folder (the last run id lives
    there); ``clock`` the share-corrected clock; ``report`` logs once.
    """
    if not signed:
        return None
    key = load_key(key_path, share)
    last = LastRunId(state_dir / LAST_ID_FILE)
    check = SignedInstructions(key, last, lifetime, clock, report)
    log.info("signed mode: only commands signed with the key in %s run here", key_path)
    return check
