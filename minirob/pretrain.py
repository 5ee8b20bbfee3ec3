"""The pretraining recipe: corpus -> tokenizer -> packed blocks -> dynamic-masking MLM training.

This file is RoBERTa's recipe in one place, with the numbers chosen for a 2-core CPU and a
10-minute budget (``benchmarks/pretrain_search.md`` records the search behind them):

- a byte-level BPE tokenizer trained on the training documents only;
- FULL-SENTENCES blocks (:mod:`minirob.data`), held-out validation from unseen documents;
- a fresh 15% / 80-10-10 mask for every batch (:mod:`minirob.masking`);
- the MLM head applied only at the masked positions (the H x V decoder is the biggest matmul of a
  small model and only ~15% of positions need it);
- AdamW with betas (0.9, 0.98), eps 1e-6, linear warm-up and decay (:mod:`minirob.train`).

``pretrain(PretrainRecipe(...))`` runs it all and leaves in ``out_dir`` a model directory that
``RobertaForMaskedLM.from_pretrained`` and ``Tokenizer.from_pretrained`` read (config.json,
model.safetensors, vocab.json, merges.txt), plus the run's metrics, curves and checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .config import RobertaConfig
from .data import (
    Document,
    MaskedBlocks,
    SpecialIds,
    fixed_masked_batches,
    pack_documents,
    read_text_documents,
    split_documents,
)
from .errors import ConfigError, DataError
from .masking import MaskingConfig
from .model import RobertaForMaskedLM
from .distributed import setup_distributed
from .run_lock import RunLock
from .run_state import RESUMABLE_CHANGES
from .train import TrainConfig, TrainResult, evaluate_batches, train

PRESETS = ("tiny", "small", "base", "large")  # RobertaConfig's class methods


def recipe_loop() -> TrainConfig:
    """The published recipe's loop settings; every other TrainConfig field keeps its default."""
    # checkpoint_every 1000: ~55 s of the tiny recipe on 2 idle cores (Ctrl-C also saves).
    # eval_every 0 here means "the recipe chooses": see PretrainRecipe.loop_config.
    return TrainConfig(out_dir="runs/tiny", lr=3e-3, minutes=10.0, checkpoint_every=1000)


@dataclass
class PretrainRecipe:
    """Every choice of a pretraining run (the command line's options map onto these fields).

    ``train`` is the loop's configuration (out_dir, lr, warmup, budget, seed, ...): the recipe
    holds a :class:`TrainConfig` rather than copying its fields. ``train.seed`` also seeds the
    data split, the model's initial weights and the masks.
    """

    corpus: str = "brown"  # "brown", or "files" with ``files``
    files: list[str] = field(default_factory=list)
    preset: str = "tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"num_hidden_layers": 2}
    vocab_size: int = 8192
    max_length: int = 32  # tokens per block, <s> and </s> included (short blocks: see search)
    batch_size: int = 64  # blocks per optimiser step (per process); 64 beat 32 at equal time
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    eval_blocks: int = 256  # validation blocks scored at periodic evaluations (all at the end)
    # Start the MLM head's output bias at the log-frequencies of the training tokens, so the model
    # predicts the unigram distribution from step 0 instead of spending hundreds of steps learning
    # it (the bias is a free parameter of the head; only its starting value changes).
    unigram_bias: bool = True
    # Continue from this model and its tokenizer instead of a fresh one (domain- or task-adaptive
    # pretraining: Gururangan et al., 2020); the model's shape then comes from its config.json.
    init_from: str | None = None
    # How the learned position table starts: "normal" (N(0, 0.02), like every other weight) or
    # "sinusoidal" (the fixed encodings of Vaswani et al. 2017, scaled by position_init_scale, as a
    # starting point that training then adjusts). Same parameter, same layout: only the init differs.
    position_init: str = "normal"
    position_init_scale: float = 1.0
    train: TrainConfig = field(default_factory=recipe_loop)

    def loop_config(self) -> TrainConfig:
        """``train`` with ``eval_every`` 0 resolved: 8 evaluations over a step budget, every 1000
        steps over a clock budget. (A periodic evaluation of 256 blocks costs about as much as 12
        training steps of the tiny recipe: every 100 steps took 16% of a 10-minute budget,
        benchmarks/pretrain_search.md.)"""
        every = self.train.eval_every
        if not every:
            every = max(25, self.train.max_steps // 8) if self.train.max_steps else 1000
        return dataclasses.replace(self.train, eval_every=every)

    def model_config(self, vocab_size: int) -> RobertaConfig:
        if self.preset not in PRESETS:
            raise ConfigError(f"preset {self.preset!r} is not one of {', '.join(PRESETS)}")
        values = dict(self.model_overrides)
        values.setdefault("vocab_size", vocab_size)
        config = getattr(RobertaConfig, self.preset)(**values)
        if config.max_sequence_length < self.max_length:
            # room for max_length tokens after RoBERTa's offset of pad_token_id + 1
            config = getattr(RobertaConfig, self.preset)(
                **{**values, "max_position_embeddings": self.max_length + config.pad_token_id + 1}
            )
        return config


def sinusoidal_positions(rows: int, width: int) -> torch.Tensor:
    """(rows, width) table: row p holds sin(p w_i), cos(p w_i) with w_i = 10000^(-2i / width)."""
    position = torch.arange(rows, dtype=torch.float32)[:, None]  # (rows, 1)
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(rows, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : width // 2]
    return table


def init_positions(model: RobertaForMaskedLM, style: str, scale: float) -> None:
    """Start the learned position embeddings from sinusoids (see PretrainRecipe.position_init).

    Why: to leave the unigram plateau an MLM must attend to *nearby* tokens, and with random
    position vectors "nearby" is something it first has to discover. Sinusoids make the offset
    between two positions a fixed rotation, so attention by relative position is available from
    the first step. RoBERTa's positions start at padding_idx + 1; the padding row stays zero.
    """
    if style == "normal":
        return
    if style != "sinusoidal":
        raise ConfigError(f"position_init={style!r} is not one of normal, sinusoidal")
    table = model.roberta.embeddings.position.weight
    first = model.config.pad_token_id + 1 if model.config.position_style == "roberta" else 0
    with torch.no_grad():
        table[first:] = scale * sinusoidal_positions(table.shape[0] - first, table.shape[1])


def init_unigram_bias(model: RobertaForMaskedLM, blocks: torch.Tensor, special: SpecialIds) -> None:
    """Set the decoder bias to log p(token) over the maskable training tokens (add-one smoothed).

    With that bias and the near-zero random logits of a fresh model, the first prediction is
    already the unigram distribution, the best a model can do without context.
    """
    counts = torch.bincount(blocks[special.maskable(blocks)], minlength=model.config.vocab_size).double()
    counts[list(special.special)] = 0.0
    probabilities = (counts + 1.0) / (counts + 1.0).sum()
    with torch.no_grad():
        model.lm_head.bias.copy_(probabilities.log().float())


def mlm_loss(model, batch: dict) -> tuple[torch.Tensor, dict]:
    """Cross-entropy at the masked positions only; the metrics the loop sums and reports."""
    logits = model(batch["input_ids"], batch["attention_mask"], predict_at=batch["predict_at"])  # (N, V)
    targets = batch["targets"]  # (N,)
    if targets.numel() == 0:  # nothing masked in this (tiny) batch: no signal, no NaN
        return logits.sum() * 0.0, {"count": 0, "correct": 0, "tokens": batch["tokens"]}
    loss = F.cross_entropy(logits.float(), targets)
    hits = logits.argmax(dim=-1) == targets  # (N,)
    metrics = {"count": targets.numel(), "correct": hits.sum(), "tokens": batch["tokens"]}
    if "shown_as_mask" in batch:
        # Accuracy where the input really showed <mask>: the part that needs context. (Of the
        # other 20% of targets, the unchanged half is won by copying the input token.)
        metrics["count_mask"] = batch["shown_as_mask"].sum()
        metrics["correct_mask"] = (hits & batch["shown_as_mask"]).sum()
    return loss, metrics


def load_corpus(recipe: PretrainRecipe) -> tuple[list[Document], list[Document]]:
    """(train documents, held-out validation documents)."""
    if recipe.corpus == "brown":
        from .datasets import load_brown, split_brown

        splits = split_brown(load_brown(progress=recipe.train.progress), seed=0)
        convert = lambda docs: [Document(d.id, d.sentences) for d in docs]  # noqa: E731
        return convert(splits.train), convert(splits.validation)
    if recipe.corpus == "files":
        if not recipe.files:
            raise DataError("--corpus files needs at least one text file (--files a.txt b.txt)")
        documents = read_text_documents(recipe.files)
        if not documents:
            raise DataError(f"the corpus is empty: no text in {', '.join(map(str, recipe.files))}")
        return split_documents(documents, validation=0.05, seed=recipe.train.seed)
    raise ConfigError(f"--corpus {recipe.corpus!r} is not one of brown, files")


def prepare(recipe: PretrainRecipe, tokenizer=None):
    """Tokenizer (trained on the training documents unless given) and packed (train, validation)
    blocks."""
    from .tokenizer import Tokenizer

    train_docs, valid_docs = load_corpus(recipe)
    if tokenizer is None:
        tokenizer = Tokenizer.train(
            (sentence for doc in train_docs for sentence in doc.sentences), vocab_size=recipe.vocab_size
        )
    train_blocks = pack_documents(tokenizer, train_docs, recipe.max_length)
    valid_blocks = pack_documents(tokenizer, valid_docs, recipe.max_length)
    return tokenizer, train_blocks, valid_blocks


def _recipe_record(recipe: PretrainRecipe) -> dict:
    """The recipe as run.json records it and the resume fingerprint compares it (no budgets)."""
    record = dataclasses.asdict(recipe)
    record["train"] = {k: v for k, v in record["train"].items() if k not in RESUMABLE_CHANGES}
    return record


def build_model(recipe: PretrainRecipe, tokenizer, train_blocks: torch.Tensor, special: SpecialIds) -> RobertaForMaskedLM:
    """A fresh model of the recipe's shape (or the ``init_from`` one), checked against the data."""
    start = RobertaForMaskedLM.from_pretrained(recipe.init_from) if recipe.init_from else None
    config = start.config if start is not None else recipe.model_config(tokenizer.vocab_size)
    if recipe.max_length > config.max_sequence_length:
        raise ConfigError(
            f"--max-length {recipe.max_length} is longer than the {config.max_sequence_length} "
            f"tokens the model's position table holds (max_position_embeddings="
            f"{config.max_position_embeddings})"
        )
    if tokenizer.vocab_size > config.vocab_size:
        raise ConfigError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the model's vocab_size is "
            f"{config.vocab_size}"
        )
    torch.manual_seed(recipe.train.seed)  # the same initial weights on every process
    if start is not None:
        return start  # its trained weights, output bias included
    model = RobertaForMaskedLM(config)
    init_positions(model, recipe.position_init, recipe.position_init_scale)
    if recipe.unigram_bias:
        init_unigram_bias(model, train_blocks, special)
    return model


def pretrain(recipe: PretrainRecipe, resume: bool = False, prepared=None) -> TrainResult:
    """Run the whole recipe; the final model and tokenizer are written to ``recipe.train.out_dir``.

    ``prepared``: an already built ``(tokenizer, train_blocks, valid_blocks)`` (tests, searches).
    The run directory is locked for the whole recipe (one writer: :mod:`minirob.run_lock`).
    """
    rank, world = setup_distributed()
    out_dir = Path(recipe.train.out_dir)
    with RunLock(out_dir) if rank == 0 else contextlib.nullcontext():
        if prepared is None:
            from .tokenizer import Tokenizer

            # A resumed run keeps its own tokenizer (not a retrained one), a continued one its model's.
            source = out_dir if resume and (out_dir / "vocab.json").exists() else recipe.init_from
            prepared = prepare(recipe, tokenizer=Tokenizer.from_pretrained(source) if source else None)
        tokenizer, train_blocks, valid_blocks = prepared
        special = SpecialIds.from_tokenizer(tokenizer)
        model = build_model(recipe, tokenizer, train_blocks, special)
        batches = MaskedBlocks(train_blocks, recipe.batch_size, special, recipe.masking,
                               seed=recipe.train.seed, rank=rank, world_size=world)
        eval_small = fixed_masked_batches(valid_blocks, special, masking=recipe.masking, limit=recipe.eval_blocks)
        eval_full = fixed_masked_batches(valid_blocks, special, masking=recipe.masking)
        if rank == 0:
            tokenizer.save(out_dir)
        run_info = {
            "recipe": _recipe_record(recipe),
            "model_config": model.config.to_hf_dict(),
            "data": {
                "train_blocks": len(train_blocks),
                "validation_blocks": len(valid_blocks),
                "train_tokens": int((train_blocks != special.pad).sum()),
            },
        }
        result = train(model, mlm_loss, batches, recipe.loop_config(),
                       evaluate=lambda m: evaluate_batches(m, mlm_loss, eval_small), resume=resume,
                       run_info=run_info)
        if rank == 0:
            result.metrics = final_evaluation(model, eval_full, result, out_dir)
    return result


def final_evaluation(model: RobertaForMaskedLM, batches: list, result: TrainResult, out_dir: Path) -> dict:
    """Score every validation block; write final_eval.json, the last metrics line and the model."""
    final = evaluate_batches(model, mlm_loss, batches)
    final["step"] = result.step
    final["elapsed"] = result.elapsed
    (out_dir / "final_eval.json").write_text(json.dumps(final, indent=2))
    with open(out_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"split": "eval_full", **final}) + "\n")
    model.save_pretrained(out_dir)
    return final
