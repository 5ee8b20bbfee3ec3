"""The ``minirob`` command line.

Each subcommand lives in its own module under :mod:`minirob.commands` and exposes
``register(subparsers)``, which adds an ``argparse`` sub-parser whose ``func`` default receives the
parsed arguments. This file only discovers those modules and turns library errors into one-line
messages with a non-zero exit code (no Python traceback for user mistakes), and applies
``--threads`` for the commands that declare it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import torch

from . import __version__, commands
from .errors import MinirobError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minirob",
        description="A readable RoBERTa: pretrain on a CPU, load real weights, fine-tune, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"minirob {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        if hasattr(module, "register"):  # shared helpers (options.py) register no command
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "threads", None):  # commands that run a model declare --threads (options.py)
        torch.set_num_threads(args.threads)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("minirob: interrupted", file=sys.stderr)
        return 130
    except (MinirobError, ValueError, OSError) as error:
        # A user mistake or a bad file (OSError: missing, a folder where a file belongs, no
        # permission, disk full...): say what, not where in our code.
        print(f"minirob {args.command}: error: {error}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
