"""``minirob fill-mask``: what a masked language model puts in each ``<mask>``.

    minirob fill-mask runs/tiny "The <mask> said Friday."
    minirob fill-mask runs/tiny "He went <mask> the house." --top 10
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fill-mask", help="top predictions for each <mask> in a sentence")
    p.add_argument("model", help="a model directory (config.json, model.safetensors, tokenizer files)")
    p.add_argument("texts", nargs="+", help="sentences containing <mask>")
    p.add_argument("--top", type=int, default=5, help="how many candidates to show per <mask>")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..examples.fill_mask import fill_mask, load_mlm

    from ..errors import ConfigError

    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}")
    model, tokenizer = load_mlm(args.model)
    top = min(args.top, model.config.vocab_size)  # cannot show more candidates than tokens
    for text in args.texts:
        print(text)
        for position, candidates in enumerate(fill_mask(model, tokenizer, text, top=top)):
            shown = "  ".join(f"{token!r} {100 * p:.1f}%" for token, p in candidates)
            print(f"  <mask> {position + 1}: {shown}")
    return 0
