"""``envy-io policy``: what the lab's lockdown policy allows you now, and why; ``envy-io keygen``: a signing key."""

from __future__ import annotations

import argparse
from pathlib import Path

from envy.policy.report import describe_policy
from envy.policy.rules import PolicyError
from envy.protocol.signing import KEY_ENV, SigningError, keygen
from envy.share.layout import ShareLayout
from envy_io.errors import UsageError
from envy_io.registry import CommandEnv, Subcommand


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", default=None, help="whose limits to show (default: you)")
    parser.add_argument("--policy", default=None, metavar="FILE",
                        help="check this policy file instead of the configured one (ENVY_POLICY or 'policy:')")


def run_policy(args: argparse.Namespace, env: CommandEnv) -> int:
    layout = ShareLayout(Path(env.config.share)) if env.config.share else None
    if layout is not None and not layout.is_mounted(env.fs):
        layout = None  # no seats to count on an unmounted share; the policy itself may live elsewhere
    try:
        text = describe_policy(args.policy or env.config.policy, args.user or env.user, layout=layout, fs=env.fs)
    except PolicyError as exc:
        raise UsageError(str(exc)) from None
    env.print(text)
    return 0


def add_keygen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default=None,
        help=f"where to write the key (default: ${KEY_ENV}, else signing.key in Envy's local state folder)",
    )


def run_keygen(args: argparse.Namespace, env: CommandEnv) -> int:
    try:
        path = keygen(Path(args.path) if args.path else None, env.config.share)
    except SigningError as exc:
        raise UsageError(str(exc)) from None
    env.print(f"new signing key: {path} (readable only by you)")
    env.print("copy it to the same place on every machine that runs your agents (or point "
              f"{KEY_ENV} at it), never onto the share; then set 'signed: true' in each machine's local config")
    return 0


SUBCOMMANDS = [
    Subcommand("policy", "what the lab's lockdown policy allows you now, and why", add_policy_arguments, run_policy),
    Subcommand(
        "keygen", "make a key for signed mode (kept off the share)", add_keygen_arguments, run_keygen, in_shell=False
    ),
]
