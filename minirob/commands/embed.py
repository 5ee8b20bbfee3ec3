"""``minirob embed`` and ``minirob similarity``: sentence vectors from any encoder.

    minirob embed minilm --file sentences.txt --output vectors.npy      # (N, H) float32
    minirob embed minilm --file sentences.txt --output vectors.jsonl    # {"text", "vector"} lines
    minirob embed runs/tiny "one text" "another" --pooling first
    minirob similarity "A cat sleeps on the mat." "A kitten naps on a rug."   # model: minilm

Vectors are the mean of the last layer's token states (``--pooling mean``, what
all-MiniLM-L6-v2 was trained for) or the ``<s>`` state (``first``), scaled to length 1 unless
``--no-normalize``; the similarity is their cosine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..pipelines import POOLINGS, pipeline
from .options import add_device, add_threads, positive_int
from .predict import texts_from

FORMATS = (".npy", ".jsonl")


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pooling", choices=POOLINGS, default="mean")
    p.add_argument("--batch-size", type=positive_int, default=32)
    add_device(p)
    add_threads(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("embed", help="sentence vectors for texts (.npy or JSONL)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="an encoder: a minirob run, a transformers or fairseq checkpoint, 'minilm'")
    p.add_argument("texts", nargs="*", help="texts to embed (or --file)")
    p.add_argument("--file", help="read texts from this file, one per line (blank lines skipped)")
    p.add_argument("--output", help="write vectors here: .npy (N x H) or .jsonl (default: JSONL on stdout)")
    p.add_argument("--no-normalize", dest="normalize", action="store_false",
                   help="keep the vectors' lengths (default: unit length)")
    _model_options(p)
    p.set_defaults(func=run_embed)

    s = subparsers.add_parser("similarity", help="cosine similarity of two texts' sentence vectors",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("a", help="first text")
    s.add_argument("b", help="second text")
    s.add_argument("--model", default="minilm", help="the encoder (default: minilm)")
    _model_options(s)
    s.set_defaults(func=run_similarity)


def run_embed(args: argparse.Namespace) -> int:
    texts = texts_from(args, "embed")
    suffix = Path(args.output).suffix if args.output else ".jsonl"
    if suffix not in FORMATS:
        raise ConfigError(f"--output {args.output}: the name must end in {' or '.join(FORMATS)}")
    embed = pipeline("sentence-embedding", args.model, device=args.device,
                     batch_size=args.batch_size, pooling=args.pooling, normalize=args.normalize)
    vectors = embed(list(texts)).numpy().astype(np.float32)  # (N, H)
    if suffix == ".npy":
        np.save(args.output, vectors)
    else:
        lines = "".join(json.dumps({"text": t, "vector": [round(float(x), 6) for x in v]},
                                   ensure_ascii=False) + "\n" for t, v in zip(texts, vectors))
        if not args.output:
            sys.stdout.write(lines)
            return 0
        Path(args.output).write_text(lines, encoding="utf-8")
    print(f"wrote {vectors.shape[0]} vectors of {vectors.shape[1]} numbers to {args.output}",
          file=sys.stderr)
    return 0


def run_similarity(args: argparse.Namespace) -> int:
    embed = pipeline("sentence-embedding", args.model, device=args.device,
                     batch_size=args.batch_size, pooling=args.pooling)
    print(f"{embed.similarity(args.a, args.b):.4f}")
    return 0
