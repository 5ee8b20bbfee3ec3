"""Benchmark 1: one MLM pretraining step (forward, backward, AdamW step), minirob vs transformers.

Both sides get the same weights, the same batch and the same masked positions (drawn once with
:func:`minirob.masking.mask_tokens`, 15% of the tokens). Each trains the way its users do:

- minirob: ``logits = model(ids, attention_mask, predict_at=targets_mask)`` gives (N, V) logits only
  at the N masked positions, then ``cross_entropy(logits, targets)``;
- transformers: ``model(ids, attention_mask, labels=labels).loss`` with ``labels = -100`` wherever
  no prediction is wanted (its documented convention), so it computes all B*T rows of logits.

Both use ``torch.optim.AdamW(fused=True)``, which is what transformers' ``Trainer`` picks by
default on torch >= 2.8. The step's FLOPs are counted by torch's own ``FlopCounterMode``
(matmuls and attention, forward and backward); with the matmul FLOP/s measured before every
pair (:mod:`benchmarks.peak`) they give the utilisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import minirob
from minirob.masking import MaskedBatch, mask_tokens

from .harness import Comparison, interleave, precision_context, training_closure
from .peak import matmul_rate
from .twins import FIRST_ORDINARY_ID, attention_implementation, make_inputs, pair

CLASS_NAME = "RobertaForMaskedLM"


@dataclass
class PretrainBatch:
    masked: MaskedBatch  # input_ids (B, T), predict_at (B, T), targets (N,)
    attention_mask: torch.Tensor  # (B, T) all ones: packed pretraining text has no padding
    labels: torch.Tensor  # (B, T) transformers' form: the target id, or -100 (ignored)


def make_batch(
    config: minirob.RobertaConfig, batch: int, length: int, device: torch.device, seed: int = 0
) -> PretrainBatch:
    """Random ordinary tokens between <s> and </s>, 15% of them masked (80/10/10)."""
    ids, attention_mask = make_inputs(config, batch, length, "cpu", seed)
    mask_id = config.vocab_size - 1  # RoBERTa keeps <mask> as the last id
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = maskable[:, -1] = False
    masked = mask_tokens(
        ids, mask_id=mask_id, maskable=maskable, random_ids=(FIRST_ORDINARY_ID, mask_id),
        generator=torch.Generator().manual_seed(seed),
    )
    labels = torch.full_like(ids, -100)
    labels[masked.predict_at] = masked.targets
    masked = MaskedBatch(*(t.to(device) for t in (masked.input_ids, masked.predict_at, masked.targets)))
    return PretrainBatch(masked, attention_mask.to(device), labels.to(device))


def minirob_loss(model, data: PretrainBatch) -> torch.Tensor:
    logits = model(data.masked.input_ids, data.attention_mask, predict_at=data.masked.predict_at)
    return F.cross_entropy(logits.float(), data.masked.targets)  # logits: (N, V)


def transformers_loss(model, data: PretrainBatch) -> torch.Tensor:
    return model(input_ids=data.masked.input_ids, attention_mask=data.attention_mask,
                 labels=data.labels).loss


def count_flops(model, loss_fn, data, device, precision) -> int:
    """Matmul + attention FLOPs of one forward and backward, counted by torch."""
    counter = FlopCounterMode(display=False)
    with counter:
        with precision_context(device, precision):
            loss = loss_fn(model, data)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def make_step(impl: str, model, data: PretrainBatch, device: torch.device, precision: str):
    """The timed step of one side ("minirob" or "transformers"): a closure over its optimiser."""
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
    probe_size: int = 1024,
) -> Comparison:
    """Interleaved steps; before each pair, the matmul FLOP/s of the moment (for utilisation)."""
    ours, theirs = (m.train() for m in pair(CLASS_NAME, config, device))
    data = make_batch(config, batch, length, device)
    comparison = Comparison(
        name=f"pretrain step (fwd+bwd+AdamW), small, {batch}x{length}, {precision}",
        unit="tokens/s",
        work=batch * length,
        extra={
            "masked_positions": int(data.masked.predict_at.sum()),
            "transformers_attention": attention_implementation(theirs),
            "minirob_flops": count_flops(ours, minirob_loss, data, device, precision),
            "transformers_flops": count_flops(theirs, transformers_loss, data, device, precision),
        },
    )
    return interleave(
        comparison,
        make_step("minirob", ours, data, device, precision),
        make_step("transformers", theirs, data, device, precision),
        repeats=repeats,
        warmup=warmup,
        device=device,
        progress=progress,
        probe=lambda: matmul_rate(device, precision, size=probe_size),
    )


def workload(impl, model, config, batch, length, precision, device):
    """One side's step on this benchmark's inputs (for the memory measurement)."""
    return make_step(impl, model.train(), make_batch(config, batch, length, device), device, precision)
