"""How every speed number in ``benchmarks/`` is taken: interleaved pairs, medians, ratio spread.

The machine this runs on may be shared, so the absolute speed drifts from minute to minute. What
stays meaningful is the *ratio* of two implementations timed back to back on the same inputs: a
slow minute slows both. So each repeat times one minirob step and one transformers step in
alternating order (minirob first on even repeats, transformers first on odd ones, so neither
always enjoys a warm cache), and the per-repeat ratio ``t_transformers / t_minirob`` is the
speed-up of that repeat. We report the median of each side's time and the min / median / max of
the per-repeat ratios: the spread is the noise.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Comparison:
    """One benchmark case timed for both implementations."""

    name: str  # e.g. "pretrain step, small, 32x128, float32"
    unit: str  # what the throughput counts: "tokens/s"
    work: float  # units of work per step (tokens)
    minirob_s: list[float] = field(default_factory=list)  # seconds per step, one per repeat
    transformers_s: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # case-specific facts (FLOPs, utilisation, ...)
    probe: list[float] = field(default_factory=list)  # optional: a rate measured before each pair

    @property
    def ratios(self) -> list[float]:
        """Per-repeat speed-up of minirob over transformers (> 1: minirob faster)."""
        return [t / m for m, t in zip(self.minirob_s, self.transformers_s)]

    def summary(self) -> dict:
        ratios = self.ratios
        return {
            "name": self.name,
            "unit": self.unit,
            "repeats": len(ratios),
            "minirob_per_s": self.work / statistics.median(self.minirob_s),
            "transformers_per_s": self.work / statistics.median(self.transformers_s),
            "ratio_min": min(ratios),
            "ratio_median": statistics.median(ratios),
            "ratio_max": max(ratios),
            **self.extra,
        }

    def to_json(self) -> dict:
        return {**asdict(self), "summary": self.summary()}


def time_once(step: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    return time.perf_counter() - start


def interleave(
    comparison: Comparison,
    minirob_step: Callable[[], object],
    transformers_step: Callable[[], object],
    *,
    repeats: int,
    warmup: int,
    device: torch.device,
    progress=None,
    probe: Callable[[], float] | None = None,
) -> Comparison:
    """Time ``repeats`` alternating pairs of steps after ``warmup`` untimed pairs.

    ``progress`` is an optional tqdm bar, advanced once per pair. ``probe``, if given, is called
    just before each pair and its value kept (e.g. the machine's matmul FLOP/s at that moment).
    """
    for _ in range(warmup):
        minirob_step()
        transformers_step()
    for repeat in range(repeats):
        if probe is not None:
            comparison.probe.append(probe())
        if repeat % 2 == 0:
            m = time_once(minirob_step, device)
            t = time_once(transformers_step, device)
        else:
            t = time_once(transformers_step, device)
            m = time_once(minirob_step, device)
        comparison.minirob_s.append(m)
        comparison.transformers_s.append(t)
        if progress is not None:
            progress.update(1)
    return comparison


PRECISIONS = ("float32", "bfloat16")


def precision_context(device: torch.device, precision: str):
    """float32: plain; bfloat16: autocast (weights stay float32, matmuls run in bfloat16)."""
    if precision == "float32":
        return contextlib.nullcontext()
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")


def training_step(model, optimizer, loss_fn, data, device: torch.device, precision: str):
    """One timed training step: forward and loss (under the precision), backward, AdamW step."""
    with precision_context(device, precision):
        loss = loss_fn(model, data)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def make_optimizer(model) -> torch.optim.Optimizer:
    """The same optimiser for both sides: fused AdamW, transformers' Trainer default on torch>=2.8."""
    return torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01, fused=True)


def training_closure(model, loss_fn, data, device: torch.device, precision: str):
    """The timed step of one side: ``training_step`` over its own fresh optimiser."""
    optimizer = make_optimizer(model)
    return lambda: training_step(model, optimizer, loss_fn, data, device, precision)
