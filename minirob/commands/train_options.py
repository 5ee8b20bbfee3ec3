"""Command-line options for the training loop's settings, declared once for every command.

A recipe holds a :class:`~minirob.train.TrainConfig`; its fields reach the command line through this
table (field -> flag, range-checked argparse type, help) instead of being declared again in each
command. ``add_loop_options`` declares the fields a command wants, with the recipe's defaults;
``loop_config`` turns the parsed arguments back into a TrainConfig.

    add_loop_options(parser, recipe_defaults.train, ("lr", "warmup", "max_steps", "seed"))
    recipe.train = loop_config(args, recipe_defaults.train, ("lr", "warmup", "max_steps", "seed"))
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Sequence

from ..train import TrainConfig
from . import options

# field: (flag, type, help). Budgets default to None on the command line: see loop_config.
LOOP_OPTIONS = {
    "out_dir": ("--out", str, "run directory (model, metrics, checkpoints)"),
    "lr": ("--lr", options.positive_float, "peak learning rate"),
    "warmup": ("--warmup", options.non_negative_float, "warm-up: a fraction of the budget (<1) or steps"),
    "weight_decay": ("--weight-decay", options.non_negative_float, "AdamW weight decay (matrices only)"),
    "minutes": ("--minutes", options.positive_float, "time budget in minutes"),
    "max_steps": ("--steps", options.positive_int, "step budget"),
    "accumulation": ("--accumulation", options.number(int, at_least=1, at_most=65_536), "micro-batches per step"),
    "bf16": ("--bf16", None, "bfloat16 autocast of the forward pass"),
    "eval_every": ("--eval-every", options.non_negative_int, "steps between evaluations"),
    "checkpoint_every": ("--checkpoint-every", options.non_negative_int, "steps between checkpoints (0: only at the end)"),
    "seed": ("--seed", options.seed, "seed of everything random"),
    "progress": ("--no-progress", None, "no progress bar"),
    "device": ("--device", options.device, "cpu, cuda, cuda:1 ... (default auto: CUDA when present)"),
    "compile": ("--compile", None, "torch.compile the model (slower on CPU, see docs/benchmarks.md; for CUDA)"),
}


def add_loop_options(parser: argparse.ArgumentParser, defaults: TrainConfig, fields: Sequence[str],
                     helps: dict[str, str] | None = None) -> None:
    """Declare ``fields`` of TrainConfig as options, defaulting to ``defaults`` (budgets to None)."""
    for name in fields:
        flag, kind, text = LOOP_OPTIONS[name]
        text = (helps or {}).get(name, text)
        if name == "progress":
            parser.add_argument(flag, dest=name, action="store_false", default=defaults.progress, help=text)
        elif name == "compile":
            parser.add_argument(flag, dest=name, action="store_true", default=defaults.compile, help=text)
        elif name == "bf16":
            parser.add_argument(flag, dest=name, default=defaults.bf16, choices=("auto", "on", "off"), help=text)
        else:
            default = None if name in ("minutes", "max_steps") else getattr(defaults, name)
            parser.add_argument(flag, dest=name, type=kind, default=default, help=text)


def loop_config(args: argparse.Namespace, defaults: TrainConfig, fields: Sequence[str]) -> TrainConfig:
    """``defaults`` with the parsed ``fields``; neither --steps nor --minutes: the default budget."""
    chosen = {name: getattr(args, name) for name in fields}
    if chosen.get("minutes") is None and chosen.get("max_steps") is None:
        chosen["minutes"], chosen["max_steps"] = defaults.minutes, defaults.max_steps
    return dataclasses.replace(defaults, **chosen)
