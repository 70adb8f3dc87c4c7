"""The `servin` command."""

from __future__ import annotations

import argparse
import sys

from servin import __version__
from servin.daemon.config import ConfigError, add_daemon_flags, resolve
from servin.daemon.main import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="servin", description="A container engine with Docker's API")
    parser.add_argument("--version", action="version", version=f"servin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_daemon_flags(sub.add_parser("daemon", help="run the Servin daemon"))
    args = parser.parse_args(argv)
    if args.command == "daemon":
        try:
            config = resolve(args)
        except ConfigError as exc:
            print(f"servin: {exc}", file=sys.stderr)
            return 1
        return run(config, reread=lambda: resolve(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
