"""Distributed helpers: everything the training loop needs to know about running as N processes.

Under ``torchrun`` every process runs the same script; ``setup_distributed`` joins them into one
group (gloo on CPU, nccl on GPU). From then on the loop only ever needs four things, all here:
who am I (``distributed``), which device is mine (``resolve_device``), add a number up over all
processes (``all_reduce_sum``), and let rank 0 decide a yes/no for everyone (``rank_zero_decides``,
for the clock, which differs between processes). ``wrap_model`` and ``gradient_sync`` are the
DistributedDataParallel side: the gradient all-reduce runs at the last micro-batch only.

How a batch is split across processes is a data question, answered once in
:func:`minirob.data.process_rows`.
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from .errors import InputError


def distributed() -> tuple[int, int]:
    """(rank, world_size); (0, 1) when not running under torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def setup_distributed() -> tuple[int, int]:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1): gloo on CPU, nccl on GPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        torch.distributed.init_process_group(backend)
    return distributed()


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None: this process's GPU under torchrun, else cuda when present, else cpu; any
    other name as torch reads it, refused in one line when torch does not know it or no GPU is here."""
    if name is None or name == "auto":
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"device {name!r} is not a device torch knows (cpu, cuda, cuda:1, ...)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r}: no CUDA GPU is available here; use --device cpu")
    return resolved


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """The sums of ``values`` over all processes (float64, so counts stay exact)."""
    if distributed()[1] == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


def rank_zero_decides(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every process (each process's clock differs: one must decide)."""
    if distributed()[1] == 1:
        return flag
    tensor = torch.tensor([float(flag)], device=device)
    torch.distributed.broadcast(tensor, 0)
    return bool(tensor.item())


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """The model under DistributedDataParallel when there are several processes, else itself."""
    if distributed()[1] == 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def gradient_sync(wrapped: nn.Module, sync: bool):
    """Context for one micro-batch's backward: DDP's all-reduce only when ``sync`` (the last one)."""
    if sync or not isinstance(wrapped, nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return wrapped.no_sync()
