"""``minirob fill-mask``: what a masked language model puts in each blank.

    minirob fill-mask runs/tiny "The <mask> said Friday."
    minirob fill-mask runs/tiny "He went <mask> the house." --top 10
    minirob fill-mask minilm "paris is the [MASK] of france."     # BERT vocabularies: [MASK]

The blank is the model's own mask token (``<mask>`` for RoBERTa, ``[MASK]`` for BERT); a text
without it is refused with the token to use.
"""

from __future__ import annotations

import argparse

from ..pipelines import pipeline
from .options import add_device, add_threads, number, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fill-mask", help="top predictions for each <mask> in a sentence",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a pretrained run, a transformers or fairseq checkpoint, or 'minilm'")
    p.add_argument("texts", nargs="+", help="sentences containing the mask token")
    p.add_argument("--top", type=number(int, at_least=1, at_most=1000), default=5,
                   help="how many candidates to show per blank")
    p.add_argument("--batch-size", type=positive_int, default=32)
    add_device(p)
    add_threads(p)
    p.set_defaults(func=run)


def run(args) -> int:
    fill = pipeline("fill-mask", args.model, device=args.device, batch_size=args.batch_size)
    for text, answers in zip(args.texts, fill(list(args.texts), top_k=args.top)):
        print(text)
        for position, candidates in enumerate(answers if isinstance(answers[0], list) else [answers]):
            shown = "  ".join(f"{a['token_str'].strip() or a['token_str']!r} {100 * a['score']:.1f}%"
                              for a in candidates)
            print(f"  {fill.mask_token} {position + 1}: {shown}")
    return 0
