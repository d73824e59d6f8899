"""``envy app build|update|rollback|status``, and ``envy init SHARE --with-app`` (``envy app init``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from envy import __version__
from envy.app.build import (
    BuildError,
    BuildTargets,
    build_pex,
    default_wheel_cache,
    wheels_in,
)
from envy.app.launcher import install_launcher
from envy.app.layout import AppLayout, validate_version
from envy.app.protocol import (
    NEWEST_PROTOCOL,
    OLDEST_PROTOCOL,
    read_share_protocol,
    write_share_protocol,
)
from envy.app.publish import (
    PublishError,
    publish,
    published_versions,
    read_build_info,
    read_current,
    rollback,
)
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envy app", description="The runnable copy of Envy on the share.")
    sub = parser.add_subparsers(dest="action", required=True)

    def share_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--share", default=os.environ.get("ENVY_SHARE"), help="the Envy folder (or ENVY_SHARE)")

    init = sub.add_parser(
        "init", help="envy init SHARE --with-app: the share, its launcher, start-up scripts and a build"
    )
    init.add_argument("share")
    init.add_argument("--user", default=None)
    init.add_argument("--from", dest="from_file", default=None, help="publish this build instead of building one")
    build = sub.add_parser("build", help="build the PEX (Envy + deps for Windows, macOS, Linux)")
    build.add_argument("-o", "--out", required=True)
    for p in (build, init):
        p.add_argument(
            "--version", dest="build_version", default=None, help="the version to stamp (default: envy's + time)"
        )
        p.add_argument(
            "--wheel-cache", default=None, help="where downloaded wheels are kept (default ~/.cache/envy/wheels)"
        )
    update = sub.add_parser("update", help="build (or take --from FILE) and publish a new version on the share")
    share_arg(update)
    update.add_argument("--from", dest="from_file", default=None)
    update.add_argument("--version", dest="build_version", default=None)
    update.add_argument("--wheel-cache", default=None)
    back = sub.add_parser("rollback", help="make the previous version current again")
    share_arg(back)
    back.add_argument("--to", default=None, help="a version on the share instead of the previous one")
    protocol = sub.add_parser(
        "protocol", help="set the share's protocol, once every agent speaks it (app/protocol.json)"
    )
    share_arg(protocol)
    protocol.add_argument("number", type=int, help="the share protocol every agent must speak")
    protocol.add_argument("--force", action="store_true",
                          help="set it even though some agents' last status says they cannot speak it")
    status = sub.add_parser("status", help="what the share runs: versions, protocol, and each agent's version")
    share_arg(status)
    status.add_argument("--json", action="store_true")
    return parser


def _version(given: str | None) -> str:
    return validate_version(given or f"{__version__}+{time.strftime('%Y%m%d.%H%M%S', time.gmtime())}")


def _build(out: Path, version: str, wheel_cache: str | None) -> dict:
    build_pex(out, version, Path(wheel_cache) if wheel_cache else default_wheel_cache(), BuildTargets())
    info = {"version": version, "protocols": [OLDEST_PROTOCOL, NEWEST_PROTOCOL], "wheels": wheels_in(out)}
    out.with_name(out.name + ".json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info


def _publish_new(
    share: Path, from_file: str | None, given_version: str | None, wheel_cache: str | None, fs: ShareFS
) -> str:
    if from_file:
        pyz = Path(from_file)
        sidecar = pyz.with_name(pyz.name + ".json")
        info = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
        version = validate_version(given_version or info.get("version") or _version_of(pyz))
        current = publish(share, pyz, version, fs, info)
    else:
        version = _version(given_version)
        with tempfile.TemporaryDirectory(prefix="envy-app-") as tmp:
            pyz = Path(tmp) / "envy.pyz"
            info = _build(pyz, version, wheel_cache)
            current = publish(share, pyz, version, fs, info)
    install_launcher(share, fs)
    return current.version


def _version_of(pyz: Path) -> str:
    """Ask a build its version (``envy X`` from ``--version``) when no build.json came with it."""
    import subprocess

    out = subprocess.run([sys.executable, "-I", str(pyz), "--version"], capture_output=True, text=True,
                         timeout=300, check=False, stdin=subprocess.DEVNULL)
    words = out.stdout.split()
    if out.returncode != 0 or len(words) != 2 or words[0] != "envy":
        raise ValueError(f"{pyz} is not an Envy build (its --version said {out.stdout.strip()!r})")
    return words[1]


def _require_share(share: str | None) -> Path:
    if not share:
        raise ValueError("no share given: use --share DIR or set ENVY_SHARE")
    return Path(share)


def run(args: argparse.Namespace, fs: ShareFS) -> int:
    if args.action == "build":
        info = _build(Path(args.out), _version(args.build_version), args.wheel_cache)
        print(f"built {args.out} (envy {info['version']}, {len(info['wheels'])} wheels)")
        return 0
    if args.action == "init":
        from envy.platform.host import user_name
        from envy.share.layout import init_share

        share = Path(args.share)
        init_share(share, args.user or user_name(), fs)
        app = AppLayout(share)
        if not app.protocol.exists():
            write_share_protocol(app, NEWEST_PROTOCOL, fs)
        version = _publish_new(share, args.from_file, args.build_version, args.wheel_cache, fs)
        print(f"Envy share ready at {share} with envy {version} in {app.folder}")
        print(f"On a lab machine: python {app.launcher} agent   (or {app.folder}/start_envy_agent.bat|.command|.sh)")
        return 0
    share = _require_share(args.share)
    ShareLayout(share).require(fs)
    app = AppLayout(share)
    if args.action == "update":
        version = _publish_new(share, args.from_file, args.build_version, args.wheel_cache, fs)
        print(f"published envy {version}: agents move to it after the frame in hand")
        return 0
    if args.action == "rollback":
        current = rollback(share, fs, args.to)
        print(f"current version is now {current.version} (was {current.previous})")
        return 0
    if args.action == "protocol":
        return _set_protocol(share, app, fs, args.number, args.force)
    return _status(share, app, fs, args.json)


def _set_protocol(share: Path, app: AppLayout, fs: ShareFS, wanted: int, force: bool) -> int:
    """Raise (or lower) the share's protocol, only once no agent would be left behind (issue 13).

    An agent speaks the share's protocol even when its build speaks newer ones, so the
    share moves on only when every agent's last status says it can follow. Agents whose
    last status is ``stopped`` are not waited for: at their next start they speak it or
    say they are too old.
    """
    from envy.protocol.status import read_statuses

    if not OLDEST_PROTOCOL <= wanted <= NEWEST_PROTOCOL:
        raise ValueError(
            f"this envy speaks share protocols {OLDEST_PROTOCOL}-{NEWEST_PROTOCOL}, not {wanted}: "
            "run the command from a build that speaks it"
        )
    behind = []
    for status in read_statuses(ShareLayout(share), fs)[0]:
        oldest, newest = status.protocols or [1, 1]  # builds before protocols were reported speak 1
        if status.state != "stopped" and not oldest <= wanted <= newest:
            behind.append(f"{status.host} (envy {status.version or '?'}, protocols {oldest}-{newest})")
    if behind and not force:
        raise ValueError(
            f"{', '.join(behind)} cannot speak protocol {wanted}: publish a build that does (envy app update; "
            "agents move to it after the frame in hand), forget agents that are gone (envy-io forget HOST), "
            "or use --force"
        )
    previous = read_share_protocol(app, fs)
    write_share_protocol(app, wanted, fs)
    print(f"share protocol is now {wanted} (was {previous})"
          + (f"; agents left behind: {', '.join(behind)}" if behind else ""))
    return 0


def _status(share: Path, app: AppLayout, fs: ShareFS, as_json: bool) -> int:
    from envy.protocol.status import read_statuses

    current = read_current(app, fs)
    agents = [
        {"host": s.host, "version": s.version, "state": s.state, "message": s.message,
         "protocols": s.protocols or [1, 1]}
        for s in read_statuses(ShareLayout(share), fs)[0]
    ]
    report = {
        "current": current.version if current else None,
        "previous": current.previous if current else None,
        "protocol": read_share_protocol(app, fs),
        "versions": published_versions(app),
        "builds": {v: read_build_info(app, v, fs).get("published") for v in published_versions(app)},
        "agents": agents,
    }
    if as_json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"current: {report['current']} (previous: {report['previous']}); share protocol {report['protocol']}")
    print("versions on the share: " + (", ".join(published_versions(app)) or "none"))
    for a in agents:
        print(
            f"  {a['host']}: envy {a['version']} (protocols {a['protocols'][0]}-{a['protocols'][1]}) {a['state']}"
            + (f" ({a['message']})" if a["state"] == "too-old" else "")
        )
    return 0


def main(argv: Sequence[str] | None = None, fs: ShareFS | None = None) -> int:
    from envy.share.fs import REAL_FS  # an entry point: it chooses the real filesystem

    args = build_parser().parse_args(argv)
    try:
        return run(args, fs or REAL_FS)
    except (BuildError, PublishError, ValueError, OSError) as exc:
        print(f"envy app {args.action}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
