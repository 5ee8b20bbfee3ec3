"""Argument types for the command line: every number a user types is checked here, by argparse.

argparse calls the ``type=`` function on the text the user gave; raising ``ArgumentTypeError`` makes
it print ``minirob pretrain: error: argument --minutes: must be a finite number > 0, got 'nan'`` and
exit 2, naming the option and the value before any work starts. One factory serves every option so
that all commands say it the same way:

    p.add_argument("--minutes", type=number(float, above=0))          # finite, > 0
    p.add_argument("--threads", type=number(int, at_least=1, at_most=1024))
    p.add_argument("--dropout", type=number(float, at_least=0, below=1))
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

from ..distributed import resolve_device
from ..errors import InputError

# Generous ceilings that no real run needs, so a typo (an extra zero, a 2**64 seed) is a message,
# not a multi-terabyte allocation or a tokenizer library that aborts the process.
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit; torch and random accept these too
MAX_THREADS = 1024


def _describe(kind: type, above, at_least, below, at_most) -> str:
    words = ["an integer" if kind is int else "a finite number"]
    if above is not None:
        words.append(f"> {above}")
    if at_least is not None:
        words.append(f">= {at_least}")
    if below is not None:
        words.append(f"< {below}")
    if at_most is not None:
        words.append(f"<= {at_most}")
    return " ".join(words[:1]) + (" " + " and ".join(words[1:]) if len(words) > 1 else "")


def number(kind: type = float, *, above=None, at_least=None, below=None, at_most=None) -> Callable[[str], float | int]:
    """An argparse ``type``: parse ``kind`` (int or float), refuse nan/inf and values out of range."""
    wanted = _describe(kind, above, at_least, below, at_most)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        out_of_range = (
            (isinstance(value, float) and not math.isfinite(value))
            or (above is not None and not value > above)
            or (at_least is not None and not value >= at_least)
            or (below is not None and not value < below)
            or (at_most is not None and not value <= at_most)
        )
        if out_of_range:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


seed = number(int, at_least=0, at_most=MAX_SEED)
threads = number(int, at_least=1, at_most=MAX_THREADS)
positive_int = number(int, at_least=1)
positive_float = number(float, above=0)
non_negative_int = number(int, at_least=0)
non_negative_float = number(float, at_least=0)
probability = number(float, at_least=0, at_most=1)


def device(text: str) -> str:
    """An argparse type: a device torch knows and this machine has, refused before any work."""
    try:
        resolve_device(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_device(parser: argparse.ArgumentParser) -> None:
    """--device for the commands that run a model without training it (predict, evaluate, ...)."""
    parser.add_argument("--device", type=device, default=None,
                        help="cpu, cuda, cuda:1 ... (default: CUDA when present)")


def add_threads(parser: argparse.ArgumentParser) -> None:
    """--threads for every command that runs a model; ``cli.main`` applies it before the command."""
    parser.add_argument("--threads", type=threads, default=None,
                        help="torch CPU threads (default: torch's choice; 1 is faster on busy, shared cores)")
