"""The `stratus` console command."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from stratus.settings import Settings


def main(argv: list[str] | None = None) -> None:
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
    args = parser.parse_args(argv)
    if args.command == "serve":
        from stratus.local.embedded_db import EmbeddedDatabaseError
        from stratus.local.runtime import run
        from stratus.local.state_dir import StateDirInUse

        if args.state_dir is not None:
            os.environ["STRATUS_STATE_DIR"] = str(args.state_dir)
        try:
            run(Settings(), host=args.host, port=args.port)
        except (StateDirInUse, EmbeddedDatabaseError) as e:
            parser.exit(1, f"stratus serve: {e}\n")


if __name__ == "__main__":
    main()
