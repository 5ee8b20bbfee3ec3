"""Benchmark 3: one fine-tuning step of sequence classification, roberta-base shape.

``RobertaForSequenceClassification`` (2 labels) on both sides with the same weights and batch;
forward, cross-entropy, backward and a fused-AdamW step. minirob's loss is written in the
training code (``cross_entropy(model(ids, mask), labels)``); transformers' comes from
``model(..., labels=labels).loss``, as its users train.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

import minirob

from .harness import Comparison, interleave, training_closure
from .twins import make_inputs, pair

CLASS_NAME = "RobertaForSequenceClassification"


@dataclass
class ClassificationBatch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B,)


def minirob_loss(model, data: ClassificationBatch) -> torch.Tensor:
    return F.cross_entropy(model(data.input_ids, data.attention_mask).float(), data.labels)


def transformers_loss(model, data: ClassificationBatch) -> torch.Tensor:
    return model(input_ids=data.input_ids, attention_mask=data.attention_mask,
                 labels=data.labels).loss


def make_data(config: minirob.RobertaConfig, batch: int, length: int, device) -> ClassificationBatch:
    ids, mask = make_inputs(config, batch, length, device)
    labels = torch.arange(batch, device=device) % config.num_labels
    return ClassificationBatch(ids, mask, labels)


def make_step(impl: str, model, data: ClassificationBatch, device: torch.device, precision: str):
    loss_fn = minirob_loss if impl == "minirob" else transformers_loss
    return training_closure(model, loss_fn, data, device, precision)


def benchmark(
    config: minirob.RobertaConfig,
    *,
    batch: int,
    length: int,
    precision: str,
    device: torch.device,
    repeats: int,
    warmup: int,
    progress=None,
) -> Comparison:
    ours, theirs = (m.train() for m in pair(CLASS_NAME, config, device))
    data = make_data(config, batch, length, device)
    comparison = Comparison(
        name=f"fine-tune step (seq. classification), roberta-base, {batch}x{length}, {precision}",
        unit="tokens/s",
        work=batch * length,
    )
    return interleave(
        comparison,
        make_step("minirob", ours, data, device, precision),
        make_step("transformers", theirs, data, device, precision),
        repeats=repeats,
        warmup=warmup,
        device=device,
        progress=progress,
    )


def workload(impl, model, config, batch, length, precision, device):
    """One side's step on this benchmark's inputs (for the memory measurement)."""
    return make_step(impl, model.train(), make_data(config, batch, length, device), device, precision)
