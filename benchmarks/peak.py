"""Benchmark 5: how close the pretraining step comes to this machine's matmul peak.

The peak is measured, not looked up: the best FLOP/s of a few back-to-back square matmuls at the
same precision and thread count. On a shared machine the peak available changes from minute to
minute, so it is measured right before every timed pair of pretraining steps (the harness's
``probe``), and each pair's utilisation is

    FLOPs per step (torch's FlopCounterMode) / seconds per step / matmul FLOP/s at that moment.
"""

from __future__ import annotations

import torch

from .harness import time_once

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def matmul_rate(device: torch.device, precision: str, size: int = 1024, repeats: int = 3) -> float:
    """Best FLOP/s of ``repeats`` (size x size) @ (size x size) matmuls in ``precision``."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator).to(device, DTYPES[precision])
            for _ in range(2))
    torch.mm(a, b)  # warm-up: thread pool, kernel selection
    best = min(time_once(lambda: torch.mm(a, b), device) for _ in range(repeats))
    return 2 * size**3 / best
