"""``minirob pretrain``: dynamic-masking MLM pretraining from scratch (the recipe in pretrain.py).

    minirob pretrain --corpus brown --preset tiny --minutes 10 --out runs/tiny
    minirob pretrain --corpus files --files a.txt b.txt --steps 2000 --out runs/mine
    minirob pretrain ... --out runs/tiny --resume          # continue an interrupted run exactly
    torchrun --nproc_per_node 2 -m minirob pretrain ...    # DistributedDataParallel, same script

Every number is range-checked by argparse before any work starts (``options.py``). The model-size
options are bounded by what this command can sensibly train (and far above what a CPU can):
``--layers`` <= 128, ``--hidden`` <= 8192 (roberta-large: 1024; the widest BERTs: 4096),
``--heads`` <= 256, ``--vocab-size`` <= 1,048,576 (the tokenizer trainer's limit; XLM-R: 250,002), ``--max-length`` <= 65,536.
"""

from __future__ import annotations

import argparse

from ..distributed import distributed
from ..masking import RULES, MaskingConfig
from ..pretrain import PRESETS, PretrainRecipe, pretrain
from . import options
from .train_options import add_loop_options, loop_config

MAX_LAYERS, MAX_HIDDEN, MAX_HEADS, MAX_VOCAB, MAX_LENGTH = 128, 8192, 256, 1_048_576, 65_536
LOOP_FIELDS = ("out_dir", "lr", "warmup", "weight_decay", "minutes", "max_steps", "accumulation", "bf16",
               "eval_every", "checkpoint_every", "seed", "progress", "device", "compile")


def _mask_probability(text: str) -> float:
    try:
        return options.number(float, above=0, below=1)(text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"the masking probability {error}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    d = PretrainRecipe()
    p = subparsers.add_parser("pretrain", help="pretrain a RoBERTa with dynamic-masking MLM")
    p.add_argument("--corpus", default=d.corpus, choices=("brown", "files"),
                   help="brown (fetched and cached) or your own UTF-8 text files (--files)")
    p.add_argument("--files", nargs="+", default=[], help="text files (implies --corpus files): a line is a sentence, a blank line ends a document")
    p.add_argument("--preset", default=d.preset, choices=PRESETS)
    p.add_argument("--layers", type=options.number(int, at_least=1, at_most=MAX_LAYERS), help="override num_hidden_layers")
    p.add_argument("--hidden", type=options.number(int, at_least=1, at_most=MAX_HIDDEN), help="override hidden_size (intermediate = 4x)")
    p.add_argument("--heads", type=options.number(int, at_least=1, at_most=MAX_HEADS), help="override num_attention_heads")
    p.add_argument("--dropout", type=options.number(float, at_least=0, below=1), help="override hidden and attention dropout")
    p.add_argument("--vocab-size", type=options.number(int, at_least=1, at_most=MAX_VOCAB), default=d.vocab_size)
    p.add_argument("--max-length", type=options.number(int, at_least=3, at_most=MAX_LENGTH), default=d.max_length,
                   help="tokens per packed block")
    p.add_argument("--batch-size", type=options.positive_int, default=d.batch_size, help="blocks per step (per process)")
    p.add_argument("--mask-prob", type=_mask_probability, default=d.masking.probability)
    p.add_argument("--mask-rule", default=d.masking.rule, choices=RULES)
    p.add_argument("--whole-word", action="store_true", help="mask whole words")
    add_loop_options(p, d.train, LOOP_FIELDS, helps={
        "minutes": f"time budget (default {d.train.minutes} without --steps)",
        "eval_every": "steps between evaluations (0: 8 per --steps run, every 1000 in a --minutes run)",
    })
    options.add_threads(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--init-from", default=None, metavar="RUN",
                   help="start from this pretrained model and its tokenizer (continued pretraining "
                        "on your own text); its config.json sets the shape")
    p.set_defaults(func=run)


def recipe_from_args(args) -> PretrainRecipe:
    overrides = {}
    if args.layers is not None:
        overrides["num_hidden_layers"] = args.layers
    if args.hidden is not None:
        overrides["hidden_size"] = args.hidden
        overrides["intermediate_size"] = 4 * args.hidden
    if args.heads is not None:
        overrides["num_attention_heads"] = args.heads
    if args.dropout is not None:
        overrides["hidden_dropout_prob"] = args.dropout
        overrides["attention_probs_dropout_prob"] = args.dropout
    d = PretrainRecipe()
    return PretrainRecipe(
        corpus="files" if args.files else args.corpus,  # --files alone means "train on these"
        files=args.files, preset=args.preset, model_overrides=overrides, vocab_size=args.vocab_size,
        max_length=args.max_length, batch_size=args.batch_size,
        masking=MaskingConfig(probability=args.mask_prob, rule=args.mask_rule, whole_word=args.whole_word),
        init_from=args.init_from, train=loop_config(args, d.train, LOOP_FIELDS),
    )


def run(args) -> int:
    recipe = recipe_from_args(args)
    result = pretrain(recipe, resume=args.resume)
    if distributed()[0] == 0:
        m, out = result.metrics, recipe.train.out_dir
        print(
            f"done: {result.step} steps in {result.elapsed / 60:.1f} min; held-out masked-token "
            f"accuracy {100 * m['accuracy']:.1f}%, loss {m['loss']:.3f} (perplexity {m['perplexity']:.1f})"
        )
        print(f"model and tokenizer: {out}  curves: {out}/curves.png")
        print(f'try: minirob fill-mask {out} "The <mask> said Friday."')
    return 0
