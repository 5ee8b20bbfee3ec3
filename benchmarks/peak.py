"""Benchmark 5: how close the pretraining step comes to this machine's matmul peak.

The peak is measured, not looked up: the best FLOP/s of a large square matmul at the same
precision and thread count (best of several, since a shared machine only ever slows it down).
The step's FLOPs are counted by torch's ``FlopCounterMode`` in :mod:`benchmarks.pretrain_step`;
utilisation = FLOPs per step / seconds per step / peak.
"""

from __future__ import annotations

import torch

from .harness import time_once

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def matmul_peak(device: torch.device, precision: str, size: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of (size x size) @ (size x size) in ``precision`` on ``device``."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator).to(device, DTYPES[precision])
            for _ in range(2))
    torch.mm(a, b)  # warm-up: thread pool, kernel selection
    best = min(time_once(lambda: torch.mm(a, b), device) for _ in range(repeats))
    return 2 * size**3 / best
