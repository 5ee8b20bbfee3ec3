"""Benchmark 6: held-out masked-token accuracy after 2, 5 and 10 minutes of pretraining on Brown.

Same everything except the model code: minirob's :mod:`minirob.pretrain` recipe, with its
defaults (tokenizer trained on Brown's training documents, its packed blocks, batch, model shape,
fresh 15% masks, AdamW learning rate and betas, warm-up then linear decay over the time budget,
gradient clipping, bfloat16 autocast where the CPU has it; the recipe's own initialisation
tricks are not used) drives two models that start from the same weights: minirob's ``RobertaForMaskedLM`` (loss at the masked positions via ``predict_at``)
and transformers' ``RobertaForMaskedLM`` trained the way its users do (``labels`` with -100
where nothing is predicted, ``.loss``). Each reads its own copy of the same batch stream, so step
k of either model sees the same batch.

On a shared machine two runs one after the other would see different loads, so the two models
train *interleaved*: one step of each in turn, each step timed and added to that model's own
clock. A checkpoint ("2 min") is the first moment a model's own clock passes it; it is then
scored on the same 256 held-out blocks (evaluation time is not on the clocks). Both models
therefore get the same machine conditions and the same amount of their own compute time.

    python -m benchmarks.run --only quality --minutes 10   # the issue's run: about 25 min wall
    python -m benchmarks.run --only quality --minutes 1    # a quick look (checkpoints at 12/30/60 s)
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import torch
from torch import nn
from tqdm import tqdm

from minirob.data import MaskedBlocks, SpecialIds, fixed_masked_batches
from minirob.model import RobertaForMaskedLM
from minirob.pretrain import PretrainRecipe, mlm_loss, prepare, recipe_loop
from minirob.train import (
    TrainConfig,
    bf16_supported,
    evaluate_batches,
    lr_factor,
    parameter_groups,
    to_device,
)

from .twins import hf_twin

CHECKPOINTS = (0.2, 0.5, 1.0)  # fractions of the budget: 2, 5 and 10 of 10 minutes
SIDES = ("minirob", "transformers")


def transformers_mlm_loss(model, batch: dict) -> tuple[torch.Tensor, dict]:
    """The transformers way: labels (B, T) = target id at masked positions, -100 elsewhere."""
    labels = torch.full_like(batch["input_ids"], -100)
    labels[batch["predict_at"]] = batch["targets"]
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
    # Scoring (not training) reads the predictions at the same positions as minirob's.
    correct = (out.logits[batch["predict_at"]].argmax(dim=-1) == batch["targets"]).sum()
    return out.loss, {"count": batch["targets"].numel(), "correct": correct}


LOSSES = {"minirob": mlm_loss, "transformers": transformers_mlm_loss}


class Trainee:
    """One side: model, optimiser, batch stream and its own clock of training seconds."""

    def __init__(self, name: str, model: nn.Module, batches, recipe: PretrainRecipe,
                 train: TrainConfig, device: torch.device, bf16: bool):
        self.name, self.model, self.batches, self.device, self.bf16 = name, model, batches, device, bf16
        self.recipe, self.train = recipe, train
        self.optimizer = torch.optim.AdamW(parameter_groups(model, recipe.train.weight_decay),
                                           lr=recipe.train.lr, betas=train.betas, eps=train.eps)
        self.clock, self.step_count, self.losses = 0.0, 0, []

    def step(self, budget: float) -> None:
        start = time.perf_counter()
        for group in self.optimizer.param_groups:
            group["lr"] = self.recipe.train.lr * lr_factor(min(1.0, self.clock / budget), self.recipe.train.warmup)
        batch = to_device(next(self.batches), self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss, _ = LOSSES[self.name](self.model, batch)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.train.grad_clip or math.inf)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.clock += time.perf_counter() - start
        self.step_count += 1
        self.losses.append(float(loss.detach()))

    def score(self, eval_batches) -> dict:
        metrics = evaluate_batches(self.model, LOSSES[self.name], eval_batches, bf16=self.bf16)
        return {"accuracy": metrics["accuracy"], "loss": metrics["loss"], "step": self.step_count,
                "clock_s": round(self.clock, 1)}


def time_to_quality(minutes: float, device: torch.device, toy: bool = False,
                    progress: bool = True, seed: int = 0) -> dict:
    if toy:
        raise SystemExit("the quality section needs real data; scale it with --minutes instead")
    started = {"utc": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "loadavg": os.getloadavg()[0]}
    wall = time.perf_counter()
    recipe = PretrainRecipe(train=dataclasses.replace(recipe_loop(), minutes=minutes, seed=seed, progress=progress))
    train = TrainConfig(minutes=minutes)  # only its optimiser numbers are read here
    tokenizer, train_blocks, valid_blocks = prepare(recipe)
    special = SpecialIds.from_tokenizer(tokenizer)
    config = recipe.model_config(tokenizer.vocab_size)
    torch.manual_seed(seed)
    ours = RobertaForMaskedLM(config).to(device).train()
    theirs = hf_twin(ours).to(device).train()
    bf16 = bf16_supported(device)
    eval_batches = fixed_masked_batches(valid_blocks, special=special, masking=recipe.masking,
                                        limit=recipe.eval_blocks)
    trainees = {
        side: Trainee(side, model, MaskedBlocks(train_blocks, recipe.batch_size, special,
                                                recipe.masking, seed=seed),
                      recipe, train, device, bf16)
        for side, model in zip(SIDES, (ours, theirs))
    }
    budget = minutes * 60
    marks = [fraction * budget for fraction in CHECKPOINTS]
    scores: dict[str, list[dict]] = {side: [] for side in SIDES}
    bar = tqdm(total=round(2 * budget), desc="time to quality (s of training)", disable=not progress,
               unit="s")
    turn = 0
    while any(t.clock < budget for t in trainees.values()):
        order = SIDES if turn % 2 == 0 else SIDES[::-1]  # alternate who goes first
        turn += 1
        for side in order:
            trainee = trainees[side]
            if trainee.clock >= budget:
                continue
            before = trainee.clock
            trainee.step(budget)
            bar.update(round(min(trainee.clock, budget)) - round(before))
            while len(scores[side]) < len(marks) and trainee.clock >= marks[len(scores[side])]:
                scores[side].append(trainee.score(eval_batches))
    bar.close()
    checkpoints = [
        {"minutes": round(mark / 60, 3), **{side: scores[side][i] for side in SIDES}}
        for i, mark in enumerate(marks)
    ]
    precision = "bfloat16 autocast" if bf16 else "float32"
    return {
        "description": (
            f"minirob pretrain recipe on Brown ({len(train_blocks)} training blocks of "
            f"{recipe.max_length}, batch {recipe.batch_size}, {precision}, lr {recipe.train.lr:g}, "
            f"{config.num_hidden_layers} layers x {config.hidden_size} wide, "
            f"{config.num_attention_heads} heads, vocab {config.vocab_size}); both models start "
            "from the same plain N(0, 0.02) weights and see the same "
            f"batches; accuracy = masked-token accuracy on {recipe.eval_blocks} held-out blocks "
            "(documents never trained on). The two models train interleaved, each on its own "
            "clock."
        ),
        "minutes": minutes,
        "checkpoints": checkpoints,
        "final_train_loss": {side: trainees[side].losses[-1] for side in SIDES},
        "wall_minutes": (time.perf_counter() - wall) / 60,
        "started": started,
        "ended": {"utc": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                  "loadavg": os.getloadavg()[0]},
    }
