"""``envy doctor SHARE [--second-mount DIR] [--json]``: exit 0 when no check fails, 1 when one does."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from envy.doctor.mount_check import second_mount_problem
from envy.doctor.report import as_json, print_result, print_summary
from envy.doctor.result import Verdict
from envy.doctor.runner import run_doctor
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

EXIT_FAILED_CHECK = 1
EXIT_BAD_INPUT = 2


def add_doctor_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    doctor = sub.add_parser("doctor", help="check that a share is fit to be a farm")
    configure_parser(doctor)
    return doctor


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("share", help="the Envy folder on the share, e.g. Z:/envy")
    parser.add_argument(
        "--second-mount",
        default=None,
        metavar="DIR",
        help="the same Envy folder mounted a second time: measures how long changes take to show",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest to wait for the second mount to see a change (default 30)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document for scripts")


def cmd_doctor(args: argparse.Namespace, fs: ShareFS) -> int:
    share = Path(args.share)
    second = Path(args.second_mount) if args.second_mount else None
    if args.wait <= 0:
        print(f"envy doctor: --wait must be a positive number of seconds, got {args.wait:g}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if second is not None:
        problem = second_mount_problem(ShareLayout(share), second)
        if problem:
            print(f"envy doctor: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
    dead_after, heartbeat = _farm_timings(share)
    if not args.json:
        print(f"envy doctor {share}" + (f" (second mount {second})" if second else ""))
    results = run_doctor(
        share,
        fs,
        second_mount=second,
        visibility_wait=args.wait,
        dead_after=dead_after,
        heartbeat=heartbeat,
        on_result=(lambda r: None) if args.json else (lambda r: print_result(r, sys.stdout)),
    )
    if args.json:
        print(as_json(share, second, results))
    else:
        print_summary(results, sys.stdout)
    return EXIT_FAILED_CHECK if any(r.verdict is Verdict.FAIL for r in results) else 0


def _farm_timings(share: Path) -> tuple[float, float]:
    """dead_after and heartbeat as the farm's config sets them (the defaults if it cannot be read)."""
    from envy.config import ConfigError, load_config

    try:
        cfg = load_config(share=str(share), config_file=None, user="doctor", overrides={})
    except (ConfigError, OSError, TypeError):
        return 30.0, 5.0
    return float(cfg.dead_after), float(cfg.heartbeat)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="envy doctor", description="Check that a share is fit to be a farm.")
    configure_parser(parser)
    from envy.share.fs import REAL_FS

    return cmd_doctor(parser.parse_args(argv), REAL_FS)


if __name__ == "__main__":
    raise SystemExit(main())
