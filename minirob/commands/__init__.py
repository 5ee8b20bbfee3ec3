"""One module per ``minirob`` subcommand; each exposes ``register(subparsers)`` (see cli.py)."""
