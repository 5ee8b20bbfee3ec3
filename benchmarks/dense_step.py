"""Benchmark 5: the dense path users write themselves, logits at every position, minirob vs transformers.

A student following the articles calls ``logits = mlm(ids, mask)`` and takes the loss over every
position (``labels = -100`` where nothing is to be predicted), without minirob's ``predict_at``
shortcut; a token tagger always has logits at every position. This measures that path:

- ``mlm``: ``RobertaForMaskedLM``, (B, T, V) logits, cross-entropy over all B*T rows (15% of the
  labels set, the rest -100, as transformers' users write it);
- ``tagging``: ``RobertaForTokenClassification`` (9 labels, as CoNLL NER), a label at every token;
- ``mlm forward``: the ``mlm`` case without its backward pass (train mode, autograd recording):
  which half of the step a difference lives in.

Both sides get the same weights (:mod:`benchmarks.twins`), the same batch and the same loss
expression ``cross_entropy(logits.view(-1, classes), labels.view(-1))`` computed under the same
precision context (transformers computes exactly this inside ``forward(labels=...)``). There is no
optimiser: the gradients are dropped after each step (``zero_grad(set_to_none=True)``), so the
step is the model's own work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

import minirob

from .harness import Comparison, interleave, precision_context
from .pretrain_step import make_batch
from .twins import attention_implementation, make_inputs, pair

TASKS = ("mlm", "tagging", "mlm forward")
CLASS_NAMES = {"mlm": "RobertaForMaskedLM", "tagging": "RobertaForTokenClassification"}
TAG_LABELS = 9  # CoNLL-2003's BIO tag set
PRESET_NAMES = {"base": "roberta-base"}


@dataclass
class DenseBatch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T) all ones
    labels: torch.Tensor  # (B, T): the class at each position, or -100 (ignored)


def make_data(task: str, config: minirob.RobertaConfig, batch: int, length: int,
              device: torch.device) -> DenseBatch:
    """MLM: the pretraining benchmark's masked batch (labels -100 off the masked 15%); tagging:
    random tags at every position."""
    if task == "tagging":
        ids, mask = make_inputs(config, batch, length, device)
        generator = torch.Generator().manual_seed(1)
        labels = torch.randint(0, config.num_labels, (batch, length), generator=generator)
        return DenseBatch(ids, mask, labels.to(device))
    data = make_batch(config, batch, length, device)
    return DenseBatch(data.masked.input_ids, data.attention_mask, data.labels)


def dense_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every position: (B, T, C) logits, (B, T) labels with -100 ignored."""
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))


def minirob_loss(model, data: DenseBatch) -> torch.Tensor:
    return dense_loss(model(data.input_ids, data.attention_mask), data.labels)


def transformers_loss(model, data: DenseBatch) -> torch.Tensor:
    return model(input_ids=data.input_ids, attention_mask=data.attention_mask,
                 labels=data.labels).loss


def make_step(impl: str, model, data: DenseBatch, device: torch.device, precision: str,
              backward: bool = True):
    """One side's timed step: forward and loss under the precision, then backward (if asked)."""
    loss_fn = minirob_loss if impl == "minirob" else transformers_loss

    def step():
        with precision_context(device, precision):
            loss = loss_fn(model, data)
        if backward:
            loss.backward()
            model.zero_grad(set_to_none=True)
        return loss

    return step


def config_for(task: str, config: minirob.RobertaConfig) -> minirob.RobertaConfig:
    return replace(config, num_labels=TAG_LABELS) if task == "tagging" else config


def benchmark(
    config: minirob.RobertaConfig,
    *,
    batch: int,
    length: int,
    precision: str,
    device: torch.device,
    repeats: int,
    warmup: int,
    task: str = "mlm",
    preset: str = "",
    progress=None,
) -> Comparison:
    forward_only = task.endswith("forward")
    base_task = task.split()[0]
    config = config_for(base_task, config)
    ours, theirs = (m.train() for m in pair(CLASS_NAMES[base_task], config, device))
    data = make_data(base_task, config, batch, length, device)
    what = "forward" if forward_only else "fwd+bwd"
    comparison = Comparison(
        name=f"dense {base_task} ({what}, all-position logits), {PRESET_NAMES.get(preset, preset)}, "
             f"{batch}x{length}, {precision}",
        unit="tokens/s",
        work=batch * length,
        extra={"transformers_attention": attention_implementation(theirs),
               "classes": config.vocab_size if base_task == "mlm" else config.num_labels},
    )
    return interleave(
        comparison,
        make_step("minirob", ours, data, device, precision, backward=not forward_only),
        make_step("transformers", theirs, data, device, precision, backward=not forward_only),
        repeats=repeats,
        warmup=warmup,
        device=device,
        progress=progress,
    )
