"""The `sentilite` command.

Each part of the package adds its own subcommands (``commands.py`` in
runtime, train, export and bench); a handler imports what it needs only
when it runs, so `predict` and `info` work on a runtime-only install and
`train` or `export` there say in one line what to install.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from sentilite import __version__
from sentilite.shared.errors import SentiliteError
from sentilite.shared.extras import install_hint

# The extra each command needs beyond the runtime (numpy and one engine), which its handler asks for with
# shared.extras.require; a command not named here runs on a runtime-only install.
COMMAND_EXTRAS = {
    "train": "train", "sweep": "train", "levers": "train", "baseline": "train", "export": "train",
    "report": "train", "bench": "train", "score": "score", "bench-score": "score",
}


def build_parser() -> argparse.ArgumentParser:
    from sentilite.bench import commands as bench_commands
    from sentilite.export import commands as export_commands
    from sentilite.runtime import commands as runtime_commands
    from sentilite.score import commands as score_commands
    from sentilite.train import commands as train_commands

    parser = argparse.ArgumentParser(
        prog="sentilite", description="Small on-device sentiment models.",
        epilog="The runtime (numpy and one engine) runs every command not marked; one marked (needs [X]) needs "
               f"the extra X too: {install_hint('X')}.")
    parser.add_argument("--version", action="version", version=f"sentilite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser = sub.add_parser

    def add_marked_parser(name, **kwargs):
        extra = COMMAND_EXTRAS.get(name)
        if extra and kwargs.get("help"):
            kwargs["help"] = f"{kwargs['help']} (needs [{extra}])"
        return add_parser(name, **kwargs)

    sub.add_parser = add_marked_parser  # each part adds its commands through it, unaware of the extras
    for part in (train_commands, export_commands, runtime_commands, bench_commands, score_commands):
        part.add_commands(sub)
    return parser


def _exit_on_sigterm(signum, frame):
    # SIGTERM (a `kill`, a CI timeout) would end Python without running `finally`
    # blocks; as SystemExit it removes staging folders and half-written temp files.
    raise SystemExit(128 + signum)


def configure_logging(quiet: bool = False) -> None:
    """Progress goes to stderr as `[sentilite] ...` lines; --quiet keeps warnings only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    root = logging.getLogger("sentilite")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(getattr(args, "quiet", False))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return args.func(args)
    except SentiliteError as exc:
        print(f"sentilite {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sentilite predict ... | head` closed the pipe: not an error
        try:
            sys.stdout = None
        finally:
            return 0
    except KeyboardInterrupt:
        print(f"sentilite {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
