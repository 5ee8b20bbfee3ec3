"""The recipe search behind minirob's pretraining defaults (see benchmarks/pretrain_search.md).

Each trial pretrains on Brown's training split for a fixed number of *tokens* (not minutes: the
machine's cores are shared, so wall-clock numbers from different moments do not compare) and
scores masked-token accuracy on the held-out validation documents. Speed is measured separately
(``--speed``), with the candidates interleaved in one process so that load affects them alike.

    .venv/bin/python benchmarks/pretrain_search.py --trial NAME key=value ... --tokens 2000000
    .venv/bin/python benchmarks/pretrain_search.py --speed
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from minirob.data import SpecialIds, MaskedBlocks
from minirob.masking import MaskingConfig
from minirob.pretrain import PretrainRecipe, mlm_loss, prepare, pretrain, recipe_loop
from minirob.train import TrainConfig

CACHE = Path("/tmp/minirob_search")


def prepared(max_length: int, vocab_size: int = 8192):
    """Tokenizer + blocks, cached between trials (the BPE is the same for every trial)."""
    from minirob.tokenizer import Tokenizer

    folder = CACHE / f"data-{vocab_size}-{max_length}"
    if (folder / "blocks.pt").exists():
        blocks = torch.load(folder / "blocks.pt")
        return Tokenizer.from_pretrained(folder), blocks["train"], blocks["valid"]
    tokenizer, train_blocks, valid_blocks = prepare(
        PretrainRecipe(max_length=max_length, vocab_size=vocab_size,
                       train=dataclasses.replace(recipe_loop(), progress=False))
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(folder)
    torch.save({"train": train_blocks, "valid": valid_blocks}, folder / "blocks.pt")
    return tokenizer, train_blocks, valid_blocks


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def trial(name: str, settings: dict, tokens: int) -> dict:
    model_keys = {"num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
                  "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range"}
    mask_keys = {"probability", "rule", "whole_word", "mask_fraction", "random_fraction"}
    overrides = {k: v for k, v in settings.items() if k in model_keys}
    masking = MaskingConfig(**{k: v for k, v in settings.items() if k in mask_keys})
    loop_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    recipe_keys = {k: v for k, v in settings.items() if k not in model_keys | mask_keys | loop_keys}
    recipe = PretrainRecipe(model_overrides=overrides, masking=masking, **recipe_keys)
    max_steps = max(1, tokens // (recipe.batch_size * recipe.max_length))
    recipe.train = dataclasses.replace(
        recipe_loop(), out_dir=str(CACHE / "runs" / name), minutes=None, progress=False, checkpoint_every=0,
        max_steps=max_steps, eval_every=max(1, max_steps // 4),  # a curve: 4 points on 256 held-out blocks
        **{k: v for k, v in settings.items() if k in loop_keys})
    data = prepared(recipe.max_length, recipe.vocab_size)
    recipe.eval_blocks = 256
    shutil.rmtree(recipe.train.out_dir, ignore_errors=True)
    start = time.time()
    result = pretrain(recipe, prepared=data)
    row = {"name": name, **settings, "tokens": tokens, "steps": recipe.train.max_steps,
           "accuracy": round(result.metrics["accuracy"], 4), "loss": round(result.metrics["loss"], 3),
           "seconds": round(time.time() - start)}
    with open(CACHE / "results.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row))
    return row


def speed(candidates: list[dict], seconds_each: float = 8.0, rounds: int = 3) -> None:
    """Tokens/s of several settings, interleaved round-robin in one process (shared cores)."""
    from minirob import RobertaConfig, RobertaForMaskedLM

    results = {json.dumps(c): [] for c in candidates}
    torch.manual_seed(0)
    setups = []
    for c in candidates:
        c = dict(c)
        bf16 = c.pop("bf16", "on") == "on"
        batch_size, max_length = c.pop("batch_size", 32), c.pop("max_length", 128)
        tokenizer, train_blocks, _ = prepared(max_length)
        model = RobertaForMaskedLM(RobertaConfig.small(max_position_embeddings=max_length + 2, **c))  # the search started from 4 x 256
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        source = MaskedBlocks(train_blocks, batch_size, SpecialIds.from_tokenizer(tokenizer), MaskingConfig())
        setups.append((model, optimizer, source, bf16))
    for _ in range(rounds):
        for key, (model, optimizer, source, bf16) in zip(results, setups):
            done, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds_each:
                batch = next(source)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss, metrics = mlm_loss(model, batch)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                done += int(metrics["tokens"])
            results[key].append(done / (time.perf_counter() - start))
    for key, values in results.items():
        print(f"{key}: {sum(values) / len(values):,.0f} tokens/s  (rounds: {[round(v) for v in values]})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--trial")
    parser.add_argument("--tokens", type=int, default=2_000_000)
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("settings", nargs="*", help="key=value (JSON values)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on shared, loaded cores 2 threads run ~6x slower)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.speed:
        speed([json.loads(c) for c in args.settings])
    else:
        settings = dict(item.split("=", 1) for item in args.settings)
        settings = {k: parse_value(v) for k, v in settings.items()}
        trial(args.trial, settings, args.tokens)
