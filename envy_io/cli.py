"""``envy-io``: the shell, and one-shot subcommands for scripts.

Settings come from --share / ENVY_SHARE / config files (see envy/config.py).
A known problem prints one line ``envy-io <cmd>: ...`` and exits non-zero (2 for
bad input, 1 for a share problem); ``--debug`` also shows the traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

from envy import __version__
from envy.config import ConfigError, load_config
from envy.platform.host import local_dirs, user_name
from envy.share.fs import REAL_FS
from envy_io.errors import EXIT_BAD_INPUT, EXIT_FARM_PROBLEM, EXIT_INTERRUPTED, EnvyIoError, UsageError, one_line
from envy_io.log_setup import setup_logging
from envy_io.registry import PROG, CommandEnv, OneLineParser, Subcommand, subcommands

DEFAULT_SUBCOMMAND = "shell"


def build_parser(commands: Sequence[Subcommand]) -> OneLineParser:
    parser = OneLineParser(prog=PROG, description="Envy IO: send commands to the Envy render farm and watch it.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--share", default=None, metavar="DIR", help="the Envy folder (or ENVY_SHARE, or 'share' in config)"
    )
    parser.add_argument("--config", default=None, metavar="FILE", help="a config file instead of your local one")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for command in commands:
        command.add_arguments(sub.add_parser(command.name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    commands = {c.name: c for c in subcommands()}
    parser = build_parser(list(commands.values()))
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    prog = PROG
    try:
        args, extra = parser.parse_known_args(argv)
        command = commands[args.command or DEFAULT_SUBCOMMAND]
        prog = f"{PROG} {command.name}"
        if extra:
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see {prog} --help)")
        setup_logging(args.verbose, local_dirs().state / "logs")
        user = user_name()
        config = load_config(share=args.share, config_file=args.config, user=user)
        env = CommandEnv(config, user, REAL_FS, prog=prog, debug=args.debug, verbose=args.verbose)
        return command.run(args, env)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except EnvyIoError as exc:
        return _report(exc.prog or prog, exc, exc.exit_code, debug)
    except ConfigError as exc:
        return _report(prog, exc, EXIT_BAD_INPUT, debug)
    except OSError as exc:  # the share failed under us (EIO, ESTALE, a lock that never freed)
        return _report(prog, exc, EXIT_FARM_PROBLEM, debug)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _report(prog: str, exc: BaseException, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"{prog}: {one_line(str(exc)) or type(exc).__name__}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
