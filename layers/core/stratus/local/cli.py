"""The `stratus` console command: `stratus serve` runs the platform locally; the other commands talk to
a Stratus API through the Python client (stratus.client.cli)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from stratus.client.cli import add_commands

    parser = argparse.ArgumentParser(prog="stratus", description="Stratus: a serverless ML platform")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the whole platform locally on its embedded defaults")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="local state folder (default: $STRATUS_STATE_DIR or ./.stratus)",
    )
    add_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "serve":
        from stratus.local.embedded_db import EmbeddedDatabaseError
        from stratus.local.runtime import run
        from stratus.local.state_dir import StateDirInUse
        from stratus.settings import Settings

        if args.state_dir is not None:
            os.environ["STRATUS_STATE_DIR"] = str(args.state_dir)
        try:
            run(Settings(), host=args.host, port=args.port)
        except (StateDirInUse, EmbeddedDatabaseError) as e:
            parser.exit(1, f"stratus serve: {e}\n")
        return
    from stratus.client.cli import run as run_client

    sys.exit(run_client(args))


if __name__ == "__main__":
    main()
