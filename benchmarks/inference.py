"""Benchmark 2: inference of the roberta-base architecture (random weights), minirob vs transformers.

The encoder alone (``RobertaModel``, no pooler on either side), eval mode, under
``torch.inference_mode()``, with an all-ones attention mask passed as users pass it. transformers
runs its default attention (reported in the results; "sdpa" in transformers 5), minirob its fused
backend. Throughput is tokens per second of one forward pass over the whole batch.
"""

from __future__ import annotations

import torch

import minirob

from .harness import Comparison, interleave, precision_context
from .twins import attention_implementation, make_inputs, pair

CLASS_NAME = "RobertaModel"

def make_step(impl: str, model, ids, mask, device: torch.device, precision: str):
    """One forward pass of the whole batch, no autograd."""
    def step():
        with torch.inference_mode(), precision_context(device, precision):
            if impl == "minirob":
                return model(ids, mask)
            return model(input_ids=ids, attention_mask=mask).last_hidden_state
    return step


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
    ours, theirs = (m.eval() for m in pair(CLASS_NAME, config, device))
    ids, mask = make_inputs(config, batch, length, device)
    comparison = Comparison(
        name=f"inference, roberta-base, {batch}x{length}, {precision}",
        unit="tokens/s",
        work=batch * length,
        extra={"transformers_attention": attention_implementation(theirs)},
    )
    return interleave(
        comparison,
        make_step("minirob", ours, ids, mask, device, precision),
        make_step("transformers", theirs, ids, mask, device, precision),
        repeats=repeats,
        warmup=warmup,
        device=device,
        progress=progress,
    )


def workload(impl, model, config, batch, length, precision, device):
    """One side's forward on this benchmark's inputs (for the memory measurement)."""
    ids, mask = make_inputs(config, batch, length, device)
    return make_step(impl, model.eval(), ids, mask, device, precision)
