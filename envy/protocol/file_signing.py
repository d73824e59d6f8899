"""Signed files: in signed mode, a share file that can choose code must carry the farm key's signature.

Renderer profiles, the farm config keys that reach them, the policy and
``Envy_Functions.py`` decide what an agent runs, so on a class farm they are
as powerful as a command line (Must-hold 2). ``envy-io sign FILE`` writes
``FILE.envy-sig`` beside it: one line, the HMAC-SHA256 with the farm's
signing key over a domain tag, the file's name (case-folded, so a signed
profile cannot be renamed into the policy's place) and the SHA-256 of its
content. Any change to the file, or a signature made with another key,
fails :func:`file_problem`.

The signature file is read through the bounded reader like every share file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from envy.share.atomic import atomic_write
from envy.share.bounded import ShareFileError, read_share_file
from envy.share.fs import ShareFS

SIG_SUFFIX = ".envy-sig"
_DOMAIN = b"envy-file-v1"  # a line signature never verifies as a file signature, nor the reverse


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + SIG_SUFFIX)


def file_signature(key: bytes, name: str, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest().encode("ascii")
    return hmac.new(key, b"\n".join((_DOMAIN, name.casefold().encode("utf-8"), digest)), hashlib.sha256).hexdigest()


def sign_file(key: bytes, path: Path, fs: ShareFS) -> Path:
    """Write ``path``'s signature beside it (``envy-io sign``); returns the signature's path."""
    data = read_share_file(fs, path, "config")
    sig = signature_path(path)
    atomic_write(sig, file_signature(key, path.name, data) + "\n", fs)
    return sig


def file_problem(key: bytes, path: Path, data: bytes, fs: ShareFS) -> str | None:
    """Why ``data`` (read from ``path``) is not covered by the farm key, or None when it is."""
    try:
        text = read_share_file(fs, signature_path(path), "seat").decode("ascii").strip()
    except FileNotFoundError:
        return f"{path} is not signed (sign it with: envy-io sign '{path}')"
    except (ShareFileError, UnicodeDecodeError) as exc:
        return f"{path}: its signature file is not usable ({exc})"
    except OSError as exc:
        return f"{path}: cannot read its signature ({exc.strerror or exc})"
    if not hmac.compare_digest(text, file_signature(key, path.name, data)):
        return (f"{path} changed since it was signed, or was signed with another key "
                f"(sign it again with: envy-io sign '{path}')")
    return None


def read_signed_file(key: bytes, path: Path, kind: str, fs: ShareFS) -> bytes:
    """The bytes of ``path`` when its signature verifies; ShareFileError (one line naming it) otherwise."""
    data = read_share_file(fs, path, kind)
    problem = file_problem(key, path, data, fs)
    if problem is not None:
        raise ShareFileError(f"signed mode: refusing {problem}")
    return data


def is_local(path: Path, share: str | os.PathLike[str] | None) -> bool:
    """True when ``path`` is not inside the share (the machine's own admin config)."""
    if share is None:
        return True
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(share))
    except ValueError:
        return True
    return False


class SignedFiles:
    """Signed mode's rule for files that choose code: local (outside the share), or signed with the farm key."""

    def __init__(self, key: bytes, share: str | os.PathLike[str] | None, fs: ShareFS) -> None:
        self.key = key
        self.share = share
        self.fs = fs

    def problem(self, path: Path, data: bytes) -> str | None:
        if is_local(path, self.share):
            return None
        problem = file_problem(self.key, path, data, self.fs)
        return f"signed mode: refusing {problem}" if problem else None
