"""``minirob evaluate``: masked-token accuracy, loss and perplexity of an MLM on held-out text.

    minirob evaluate runs/tiny                       # Brown's held-out validation documents
    minirob evaluate runs/tiny --files notes.txt     # your own text (every document scored)

The text is packed into FULL-SENTENCES blocks and masked once with a fixed seed (15%, 80/10/10),
so two models scored with the same options face the very same blanks.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="masked-token accuracy and perplexity on held-out text")
    p.add_argument("model", help="a model directory written by minirob pretrain")
    p.add_argument("--corpus", default="brown", choices=("brown", "files"))
    p.add_argument("--files", nargs="+", default=[], help="text files (implies --corpus files)")
    p.add_argument("--split", default="validation", choices=("validation", "test"),
                   help="which held-out Brown documents")
    p.add_argument("--max-length", type=int, default=None,
                   help="block length (default: the one the run trained with, else the model's maximum)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the fixed masks")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(func=run)


def trained_block_length(directory) -> int | None:
    """The block length a ``minirob pretrain`` run trained with (from its run.json), if known:
    scoring longer blocks would use position embeddings the run never trained."""
    from pathlib import Path

    path = Path(directory) / "run.json"
    if not path.is_file():
        return None
    try:
        return int(json.loads(path.read_text())["recipe"]["max_length"])
    except (KeyError, TypeError, ValueError):
        return None


def run(args) -> int:
    from ..data import Document, SpecialIds, fixed_masked_batches, pack_documents, read_text_documents
    from ..errors import DataError
    from ..examples.fill_mask import load_mlm
    from ..pretrain import mlm_loss
    from ..train import evaluate_batches

    model, tokenizer = load_mlm(args.model)
    if args.files:
        documents = read_text_documents(args.files)
        source = ", ".join(args.files)
    else:
        from ..datasets import load_brown, split_brown

        split = getattr(split_brown(load_brown(progress=False), seed=0), args.split)
        documents = [Document(d.id, d.sentences) for d in split]
        source = f"Brown {args.split} ({len(documents)} documents)"
    if not documents:
        raise DataError(f"no text to evaluate in {source}")
    max_length = args.max_length or trained_block_length(args.model) or model.config.max_sequence_length
    blocks = pack_documents(tokenizer, documents, max_length)
    batches = fixed_masked_batches(blocks, SpecialIds.from_tokenizer(tokenizer), seed=args.seed)
    result = evaluate_batches(model, mlm_loss, batches)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{source}: {int(result['count'])} masked tokens; accuracy {100 * result['accuracy']:.2f}%, "
              f"loss {result['loss']:.3f} nats, perplexity {result['perplexity']:.1f}")
    return 0
