"""``minirob pretrain``: dynamic-masking MLM pretraining from scratch (the recipe in pretrain.py).

    minirob pretrain --corpus brown --preset tiny --minutes 10 --out runs/tiny
    minirob pretrain --corpus files --files a.txt b.txt --steps 2000 --out runs/mine
    minirob pretrain ... --out runs/tiny --resume          # continue an interrupted run exactly
    torchrun --nproc_per_node 2 -m minirob pretrain ...    # DistributedDataParallel, same script
"""

from __future__ import annotations

import argparse
import json

from ..masking import RULES, MaskingConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..pretrain import PRESETS, PretrainRecipe

    d = PretrainRecipe()
    p = subparsers.add_parser("pretrain", help="pretrain a RoBERTa with dynamic-masking MLM")
    p.add_argument("--corpus", default=d.corpus, choices=("brown", "files"),
                   help="brown (fetched and cached) or your own UTF-8 text files (--files)")
    p.add_argument("--files", nargs="+", default=[], help="text files (implies --corpus files): a line is a sentence, a blank line ends a document")
    p.add_argument("--out", default=d.out_dir, help="run directory (model, tokenizer, metrics, checkpoints)")
    p.add_argument("--preset", default=d.preset, choices=PRESETS)
    p.add_argument("--layers", type=int, help="override num_hidden_layers")
    p.add_argument("--hidden", type=int, help="override hidden_size (intermediate = 4x)")
    p.add_argument("--heads", type=int, help="override num_attention_heads")
    p.add_argument("--dropout", type=float, help="override hidden and attention dropout")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size)
    p.add_argument("--max-length", type=int, default=d.max_length, help="tokens per packed block")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="blocks per step (per process)")
    p.add_argument("--accumulation", type=int, default=d.accumulation)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--warmup", type=float, default=d.warmup, help="fraction of the budget (<1) or steps")
    p.add_argument("--minutes", type=float, default=None, help=f"time budget (default {d.minutes} without --steps)")
    p.add_argument("--steps", type=int, default=None, help="step budget")
    p.add_argument("--mask-prob", type=float, default=MaskingConfig().probability)
    p.add_argument("--mask-rule", default="bernoulli", choices=RULES)
    p.add_argument("--whole-word", action="store_true", help="mask whole words")
    p.add_argument("--bf16", default="auto", choices=("auto", "on", "off"))
    p.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (0: 8 per --steps run, every 1000 in a --minutes run)")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 is faster on busy, shared cores)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--init-from", default=None, metavar="RUN",
                   help="start from this pretrained model and its tokenizer (continued pretraining "
                        "on your own text); its config.json sets the shape")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def recipe_from_args(args):
    from ..errors import ConfigError
    from ..pretrain import PretrainRecipe

    # Say so now, not after the corpus is fetched and a tokenizer trained on it.
    for option in ("steps", "batch_size", "accumulation", "vocab_size", "max_length", "minutes"):
        value = getattr(args, option)
        if value is not None and value <= 0:
            raise ConfigError(f"--{option.replace('_', '-')} must be > 0, got {value}")

    overrides = {}
    if args.layers:
        overrides["num_hidden_layers"] = args.layers
    if args.hidden:
        overrides["hidden_size"] = args.hidden
        overrides["intermediate_size"] = 4 * args.hidden
    if args.heads:
        overrides["num_attention_heads"] = args.heads
    if args.dropout is not None:
        overrides["hidden_dropout_prob"] = args.dropout
        overrides["attention_probs_dropout_prob"] = args.dropout
    minutes = args.minutes
    if minutes is None and args.steps is None:
        minutes = PretrainRecipe().minutes
    corpus = "files" if args.files else args.corpus  # --files alone means "train on these"
    return PretrainRecipe(
        out_dir=args.out, corpus=corpus, files=args.files, preset=args.preset,
        model_overrides=overrides, vocab_size=args.vocab_size, max_length=args.max_length,
        batch_size=args.batch_size, accumulation=args.accumulation, lr=args.lr, warmup=args.warmup,
        minutes=minutes, max_steps=args.steps,
        masking=MaskingConfig(probability=args.mask_prob, rule=args.mask_rule, whole_word=args.whole_word),
        bf16=args.bf16, eval_every=args.eval_every, checkpoint_every=args.checkpoint_every,
        seed=args.seed, progress=not args.no_progress, init_from=args.init_from,
    )


def run(args) -> int:
    from ..pretrain import pretrain
    from ..train import distributed

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = pretrain(recipe_from_args(args), resume=args.resume)
    if distributed()[0] == 0:
        m = result.metrics
        print(
            f"done: {result.step} steps in {result.elapsed / 60:.1f} min; held-out masked-token "
            f"accuracy {100 * m['accuracy']:.1f}%, loss {m['loss']:.3f} (perplexity {m['perplexity']:.1f})"
        )
        print(f"model and tokenizer: {args.out}  curves: {args.out}/curves.png")
        print(f'try: minirob fill-mask {args.out} "The <mask> said Friday."')
    return 0
