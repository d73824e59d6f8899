"""``envy-io sign FILE``: cover a renderer profile, config, policy or user module with the farm key."""

from __future__ import annotations

import argparse
from pathlib import Path

from envy.protocol.file_signing import sign_file
from envy.protocol.signing import KEY_ENV, SigningError, load_key
from envy.share.bounded import ShareFileError
from envy.share.fs import ShareFS
from envy_io.errors import UsageError
from envy_io.registry import CommandEnv, Subcommand


def add_sign_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="files to sign (renderer profiles, config.yaml, the policy, Envy_Functions.py)")
    parser.add_argument("--key", default=None,
                        help=f"the signing key (default: ${KEY_ENV}, else signing.key in Envy's local state folder)")


def run_sign(args: argparse.Namespace, env: CommandEnv) -> int:
    try:
        key = load_key(Path(args.key) if args.key else None, env.config.share)
    except SigningError as exc:
        raise UsageError(str(exc)) from None
    fs = ShareFS()
    for name in args.files:
        path = Path(name)
        try:
            sig = sign_file(key, path, fs)
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except (ShareFileError, OSError) as exc:
            raise UsageError(f"{path}: cannot sign it ({exc})") from None
        env.print(f"signed {path} -> {sig.name}")
    return 0


SUBCOMMANDS = [
    Subcommand("sign", "sign a file that chooses code (profile, config, policy, user module) with the farm key",
               add_sign_arguments, run_sign, in_shell=False),
]
