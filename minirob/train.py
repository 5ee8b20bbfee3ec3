"""The training loop, shared by pretraining and fine-tuning.

API (stable; pretraining and fine-tuning both call it)::

    from minirob.train import TrainConfig, train, ShuffledBatches, evaluate_batches

    def loss_fn(model, batch):                 # model may be a DDP wrapper: only *call* it
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss = F.cross_entropy(logits, batch["labels"])          # a MEAN over the batch's items
        correct = (logits.argmax(-1) == batch["labels"]).sum()
        return loss, {"count": len(batch["labels"]), "correct": correct}

    batches = ShuffledBatches(examples, batch_size=32, collate=my_collate, seed=0)
    result = train(model, loss_fn, batches, TrainConfig(lr=3e-5, max_steps=1000, out_dir="runs/x"),
                   evaluate=lambda m: evaluate_batches(m, loss_fn, dev_batches))
    result.step, result.metrics, result.checkpoint   # where it stopped, last eval, last checkpoint

``loss_fn(model, batch) -> (loss, metrics)``: ``loss`` is the mean over the batch's items;
``metrics`` is a dict of *sums* over the batch. Two keys have a meaning for the loop:

- ``"count"``: how many items the mean is over (default 1). The loop turns every micro-batch's mean
  back into a sum and divides the accumulated gradient by the total count over all micro-batches
  and all processes, so gradient accumulation and DistributedDataParallel give exactly the mean
  over the whole global batch (not a mean of means).
- ``"tokens"``: input tokens processed, for the tokens/s readout; ``"correct"`` (with ``"count"``)
  adds an accuracy.

The batch source is any iterator of batches (a dict/tuple/list of tensors, moved to the device by
the loop) with ``state_dict()`` and ``load_state_dict(state)`` giving its position, so ``--resume``
continues with the very next batch. :class:`ShuffledBatches` is one for lists of examples.

What the loop does, per optimiser step: ``accumulation`` micro-batches (bfloat16 autocast when
enabled), gradient rescaled to the global mean, clipped to ``grad_clip``, AdamW (betas, eps, weight
decay off for biases and LayerNorms), a learning rate with linear warm-up then linear decay to zero
over the budget (``max_steps`` and/or ``minutes``; with a time budget the schedule follows the
clock). Every ``eval_every`` steps: ``evaluate(model)``, whose metrics are logged; returning
``"stop": True`` among them ends the run there (early stopping). Every ``checkpoint_every`` steps
and at the end: an atomic checkpoint (temporary file, then ``os.replace``), keeping the last
``keep_checkpoints``. Loss not finite: stop with :class:`TrainingError` naming the step, after
saving the state from before the bad step. Ctrl-C: save, say how to resume, re-raise.

Run directory (``out_dir``): ``run.json`` (seed, config, versions), ``metrics.jsonl`` (one JSON
object per log line), ``curves.png``, ``checkpoints/step-XXXXXXX.pt``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .errors import ConfigError, TrainingError

LossFn = Callable[[nn.Module, Any], "tuple[Tensor, dict[str, Any]]"]
EvalFn = Callable[[nn.Module], "dict[str, float]"]


@dataclass
class TrainConfig:
    """Everything the loop needs to know; recorded in ``run.json`` and in every checkpoint."""

    out_dir: str = "runs/train"
    lr: float = 1e-3  # peak learning rate, reached at the end of warm-up
    betas: tuple[float, float] = (0.9, 0.98)  # RoBERTa's (BERT: 0.999); 0.98 is steadier
    eps: float = 1e-6
    weight_decay: float = 0.01
    warmup: float = 0.05  # warm-up length: a fraction of the budget if < 1, else a step count
    max_steps: int | None = None  # budget in optimiser steps ...
    minutes: float | None = None  # ... and/or in wall-clock minutes; the first reached stops
    grad_clip: float | None = 1.0  # max global gradient norm (None: no clipping)
    accumulation: int = 1  # micro-batches per optimiser step
    bf16: str = "auto"  # "auto" | "on" | "off": bfloat16 autocast of the forward pass
    eval_every: int = 0  # steps between evaluations (0: only at the end)
    checkpoint_every: int = 0  # steps between checkpoints (0: only at the end)
    keep_checkpoints: int = 2
    log_every: int = 10  # steps between metrics.jsonl lines
    seed: int = 0
    device: str = "auto"  # "auto": cuda when present, else cpu
    progress: bool = True  # the tqdm bar
    plot: bool = True  # write curves.png at each evaluation and at the end

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.max_steps is None and self.minutes is None:
            raise ConfigError("TrainConfig needs a budget: max_steps and/or minutes")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.minutes is not None and self.minutes <= 0:
            raise ConfigError(f"minutes must be > 0, got {self.minutes}")
        if self.accumulation < 1:
            raise ConfigError(f"accumulation must be >= 1, got {self.accumulation}")
        if self.bf16 not in ("auto", "on", "off"):
            raise ConfigError(f"bf16={self.bf16!r} is not one of auto, on, off")
        if self.lr <= 0 or self.warmup < 0:
            raise ConfigError(f"lr must be > 0 and warmup >= 0, got lr={self.lr} warmup={self.warmup}")


@dataclass
class TrainResult:
    step: int  # optimiser steps done
    metrics: dict[str, float]  # the last evaluation (empty without an evaluate function)
    checkpoint: Path | None  # the last checkpoint written
    elapsed: float  # seconds of training (summed over resumed runs)
    stopped_by: str  # "steps" | "minutes" | "evaluate" (the hook returned {"stop": True})


# ------------------------------------------------------------------------ batch sources
class ShuffledBatches:
    """Endless batches from a list of examples, reshuffled each epoch with a seeded generator.

    ``collate(list_of_examples) -> batch``. Position (epoch, index) is the resumable state.
    Under DDP pass ``rank`` / ``world_size``: each process takes every ``world_size``-th batch of
    the same shuffled order, so together they see what one process would.

    ``lengths`` (one per example) turns on *length grouping*: the shuffled order is cut into
    windows of ``group_size`` batches, each window is sorted by length and cut into batches, and
    the batches are shuffled again. A batch then holds examples of similar length, so padding to
    its longest costs little (movie-review snippets: 1.9x the real tokens with random batches,
    1.03x grouped), while which examples meet in a batch stays random from epoch to epoch.
    """

    def __init__(
        self,
        examples: list,
        batch_size: int,
        collate: Callable[[list], Any],
        seed: int = 0,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
        lengths: Sequence[int] | None = None,
        group_size: int = 50,
    ):
        if not examples:
            raise ConfigError("ShuffledBatches got no examples")
        if drop_last and len(examples) < batch_size * world_size:
            raise ConfigError(
                f"{len(examples)} examples are fewer than one batch of {batch_size}"
                + (f" x {world_size} processes" if world_size > 1 else "")
            )
        if lengths is not None and len(lengths) != len(examples):
            raise ConfigError(f"got {len(lengths)} lengths for {len(examples)} examples")
        self.examples, self.batch_size, self.collate = examples, batch_size, collate
        self.seed, self.drop_last, self.rank, self.world_size = seed, drop_last, rank, world_size
        self.lengths, self.group_size = lengths, group_size
        self.epoch, self.index = 0, 0  # index: batches of this epoch already taken (all ranks)
        self._cached: tuple[int, list[list[int]]] | None = None  # (epoch, its batches)

    def _batches(self) -> list[list[int]]:
        """This epoch's batches as lists of example indices (computed once per epoch)."""
        if self._cached is None or self._cached[0] != self.epoch:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(len(self.examples), generator=generator).tolist()
            if self.lengths is not None:
                window = self.batch_size * self.group_size
                order = [i for w in range(0, len(order), window)
                         for i in sorted(order[w : w + window], key=self.lengths.__getitem__)]
            batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
            batches = batches[: self.batches_per_epoch()]  # drop_last / whole rounds of ranks
            if self.lengths is not None:
                shuffled = torch.randperm(len(batches), generator=generator).tolist()
                batches = [batches[b] for b in shuffled]
            self._cached = (self.epoch, batches)
        return self._cached[1]

    def batches_per_epoch(self) -> int:
        full, rest = divmod(len(self.examples), self.batch_size)
        per_epoch = full if self.drop_last or not rest else full + 1
        return per_epoch - per_epoch % self.world_size

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        if self.index >= self.batches_per_epoch():
            self.epoch, self.index = self.epoch + 1, 0
        chosen = self._batches()[self.index + self.rank]
        self.index += self.world_size
        return self.collate([self.examples[i] for i in chosen])

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.index = state["epoch"], state["index"]


# ------------------------------------------------------------------------ small helpers
def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(to_device(v, device) for v in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(
            batch, **{f.name: to_device(getattr(batch, f.name), device) for f in dataclasses.fields(batch)}
        )
    return batch


def _number(value: Any) -> float:
    return float(value.detach().float().sum()) if isinstance(value, Tensor) else float(value)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def bf16_supported(device: torch.device) -> bool:
    """bfloat16 autocast pays off on GPUs that have it and CPUs with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        except AttributeError:  # older torch: play safe
            return False
    return False


def lr_factor(progress: float, warmup: float) -> float:
    """Linear warm-up from 0 to 1 over the first ``warmup`` of progress, then linear decay to 0.

    ``progress`` and ``warmup`` are fractions of the budget in [0, 1].
    """
    if progress < warmup:
        return progress / warmup
    return max(0.0, (1.0 - progress) / max(1e-12, 1.0 - warmup))


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only; biases and LayerNorm scales are left alone (as in BERT)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.dim() < 2 else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def evaluate_batches(model: nn.Module, loss_fn: LossFn, batches, bf16: bool = False) -> dict[str, float]:
    """Mean loss (weighted by each batch's ``count``), perplexity and accuracy over fixed batches.

    Metric pairs ``correct_X`` / ``count_X`` also give ``accuracy_X`` (an accuracy on a subset).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, total_count, sums = 0.0, 0.0, {}
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for batch in batches:
            loss, metrics = loss_fn(model, to_device(batch, device))
            count = _number(metrics.get("count", 1))
            if count == 0:
                continue
            total_loss += float(loss) * count
            total_count += count
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + _number(value)
    model.train(was_training)
    if total_count == 0:
        raise TrainingError("evaluation batches contained nothing to score (count 0)")
    result = {"loss": total_loss / total_count, "count": total_count}
    result["perplexity"] = math.exp(min(result["loss"], 50.0))
    if "correct" in sums:
        result["accuracy"] = sums["correct"] / total_count
    for key in sums:  # "correct_X" with "count_X": an accuracy on the subset X
        if key.startswith("correct_") and sums.get("count_" + key[8:]):
            result["accuracy_" + key[8:]] = sums[key] / sums["count_" + key[8:]]
    return result


def versions() -> dict[str, str]:
    from . import __version__

    return {
        "minirob": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


# ------------------------------------------------------------------------ distributed
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


def _all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    if distributed()[1] == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


# ------------------------------------------------------------------------ checkpoints
def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_paths(out_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints in a run directory, oldest first."""
    folder = Path(out_dir) / "checkpoints"
    return sorted(folder.glob("step-*.pt")) if folder.is_dir() else []


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(temporary, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())  # on disk before the rename makes it the checkpoint
    os.replace(temporary, path)


def _fingerprint(model: nn.Module, config: TrainConfig, extra: dict) -> dict:
    """What must match for --resume to make sense: parameter shapes and the recipe."""
    shapes = {name: list(p.shape) for name, p in model.state_dict().items()}
    keep = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in ("out_dir", "progress", "plot", "device", "minutes", "max_steps", "eval_every",
                     "checkpoint_every", "keep_checkpoints", "log_every")
    }
    return {"shapes": shapes, "train": json.loads(json.dumps(keep)), "extra": json.loads(json.dumps(extra))}


def _describe_mismatch(saved: dict, now: dict) -> str:
    for section in ("train", "extra"):
        a, b = saved.get(section, {}), now.get(section, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return f"{section}.{key} was {a.get(key)!r}, now {b.get(key)!r}"
    a, b = saved["shapes"], now["shapes"]
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"parameter {key} had shape {a.get(key)}, now {b.get(key)}"
    return "unknown difference"


# ------------------------------------------------------------------------ logging
class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` (rank 0 only).

    ``lines`` counts the records written; every checkpoint stores it, so that ``--resume`` after a
    hard kill first drops what was logged after that checkpoint (it is logged again) and any line
    the kill cut in half.
    """

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled, self.lines = path, enabled, 0

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            self.lines += 1

    def rewind(self, lines: int) -> None:
        """Keep only the first ``lines`` records (those the resumed checkpoint had seen)."""
        self.lines = lines
        if self.enabled and self.path.exists():
            kept = self.path.read_text(encoding="utf-8").splitlines(keepends=True)[:lines]
            self.path.write_text("".join(kept), encoding="utf-8")


def read_metrics(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(run_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Training loss, evaluation loss and accuracy against step, from ``metrics.jsonl``, to a PNG."""
    # A bare Figure renders to a file without pyplot, so no global backend is switched
    # (switching to Agg inside Jupyter would turn off inline plots for the whole session).
    from matplotlib.figure import Figure

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    train_rows = [r for r in records if r.get("split") == "train"]
    eval_rows = [r for r in records if r.get("split") == "eval"]
    figure = Figure(figsize=(11, 4))
    left, right = figure.subplots(1, 2)
    if train_rows:
        left.plot([r["step"] for r in train_rows], [r["loss"] for r in train_rows], lw=0.8, label="train")
    if eval_rows:
        left.plot([r["step"] for r in eval_rows], [r["loss"] for r in eval_rows], "o-", label="held-out")
        if "accuracy" in eval_rows[0]:
            right.plot([r["step"] for r in eval_rows], [100 * r["accuracy"] for r in eval_rows], "o-",
                       color="tab:green", label="held-out")
    if train_rows and "accuracy" in train_rows[0]:
        right.plot([r["step"] for r in train_rows], [100 * r["accuracy"] for r in train_rows], lw=0.8,
                   alpha=0.6, color="tab:blue", label="train")
    left.set(xlabel="optimiser step", ylabel="loss (nats)", title="loss")
    right.set(xlabel="optimiser step", ylabel="accuracy (%)", title="accuracy")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    path = Path(path) if path else run_dir / "curves.png"
    figure.savefig(path, dpi=110)
    return path


# ------------------------------------------------------------------------ the loop
def train(
    model: nn.Module,
    loss_fn: LossFn,
    batches,
    config: TrainConfig,
    evaluate: EvalFn | None = None,
    resume: bool = False,
    run_info: dict | None = None,
) -> TrainResult:
    """Train ``model`` in place. See the module docstring for the contract of each argument.

    ``run_info``: extra JSON-able facts about the run (model config, recipe, data) written to
    ``run.json``; it is part of the resume fingerprint, so resuming with a different recipe fails.
    """
    rank, world = distributed()
    main_process = rank == 0
    device = resolve_device(config.device)
    model.to(device)
    model.train()
    use_bf16 = config.bf16 == "on" or (config.bf16 == "auto" and bf16_supported(device))
    out_dir = Path(config.out_dir)
    if main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
    run_info = run_info or {}
    fingerprint = _fingerprint(model, config, run_info)

    optimizer = torch.optim.AdamW(
        parameter_groups(model, config.weight_decay), lr=config.lr, betas=config.betas, eps=config.eps
    )
    step, elapsed_before, last_metrics = 0, 0.0, {}
    last_checkpoint: Path | None = None

    existing = checkpoint_paths(out_dir)
    if resume:
        if not existing:
            raise TrainingError(f"--resume: no checkpoint in {out_dir / 'checkpoints'}")
        last_checkpoint = existing[-1]
        # A checkpoint is a pickle, and a pickle can run code: read it through the allow-list.
        from .safe_pickle import safe_torch_load

        state = safe_torch_load(last_checkpoint)
        needed = ("model", "optimizer", "batches", "rng", "step", "elapsed", "fingerprint")
        lacking = [key for key in needed if key not in state] if isinstance(state, dict) else needed
        if lacking:
            raise TrainingError(
                f"--resume: {last_checkpoint} is not a minirob training checkpoint (no "
                f"{', '.join(lacking)}); use a new --out directory"
            )
        if state["fingerprint"] != fingerprint:
            raise TrainingError(
                f"--resume: {last_checkpoint} comes from another configuration "
                f"({_describe_mismatch(state['fingerprint'], fingerprint)}); use a new --out "
                "directory or the original settings"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        batches.load_state_dict(state["batches"])
        _set_rng_state(state["rng"])
        step, elapsed_before = state["step"], state["elapsed"]
        last_metrics = state.get("metrics", {})
    else:
        if existing:
            raise TrainingError(
                f"{out_dir} already holds checkpoints ({existing[-1].name}); pass --resume to "
                "continue that run, or choose another --out directory"
            )
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed)
        if main_process:
            (out_dir / "metrics.jsonl").unlink(missing_ok=True)

    if main_process:
        info = {
            "seed": config.seed,
            "train_config": dataclasses.asdict(config),
            "versions": versions(),
            "argv": sys.argv,
            "world_size": world,
            "device": str(device),
            "bf16": use_bf16,
            "parameters": sum(p.numel() for p in model.parameters()),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "resumed_from": str(last_checkpoint) if resume else None,
            **run_info,
        }
        name = "run.json" if not resume else f"run-resumed-step{step}.json"
        (out_dir / name).write_text(json.dumps(info, indent=2, default=str))

    wrapped = model
    if world > 1:
        wrapped = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    log = MetricsLog(out_dir / "metrics.jsonl", main_process)
    if resume and "metrics_lines" in state:
        log.rewind(state["metrics_lines"])
    budget_seconds = config.minutes * 60 if config.minutes is not None else None
    warmup_fraction = config.warmup
    if config.warmup >= 1:
        if config.max_steps is None:
            raise ConfigError("warmup given in steps needs max_steps; with --minutes use a fraction < 1")
        warmup_fraction = config.warmup / config.max_steps

    def progress_of(step_now: int, elapsed: float) -> float:
        fractions = []
        if config.max_steps is not None:
            fractions.append((step_now + 1) / config.max_steps)  # step k trains as the (k+1)-th
        if budget_seconds is not None:
            fractions.append(elapsed / budget_seconds)
        return min(1.0, max(fractions))

    def snapshot() -> dict:
        return {"batches": batches.state_dict(), "rng": _rng_state()}

    def save(step_now: int, elapsed: float, snap: dict) -> Path | None:
        if not main_process:
            return None
        path = out_dir / "checkpoints" / f"step-{step_now:07d}.pt"
        save_atomic(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "batches": snap["batches"],
                "rng": snap["rng"],
                "step": step_now,
                "elapsed": elapsed,
                "metrics": last_metrics,
                "fingerprint": fingerprint,
                "train_config": dataclasses.asdict(config),
                "metrics_lines": log.lines,
                # the steps since the last log line, so a resumed run logs the same window means
                "window": {k: v for k, v in window.items() if k != "time"},
                "window_sums": dict(window_sums),
            },
            path,
        )
        for old in checkpoint_paths(out_dir)[: -config.keep_checkpoints]:
            old.unlink(missing_ok=True)
        for leftover in path.parent.glob(".step-*.pt.tmp*"):  # from a process killed mid-write
            leftover.unlink(missing_ok=True)
        return path

    def run_evaluation(step_now: int, elapsed: float) -> None:
        nonlocal last_metrics
        if evaluate is None:
            return
        if main_process:
            last_metrics = evaluate(model)
            log.write({"split": "eval", "step": step_now, "elapsed": round(elapsed, 2), **last_metrics})
            if config.plot:
                plot_curves(out_dir)
        if world > 1:
            torch.distributed.barrier()

    bar = None
    if config.progress and main_process:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.max_steps, initial=step, unit="step", dynamic_ncols=True,
                   desc="training", disable=None)

    start = time.perf_counter() - elapsed_before
    window = {"loss": 0.0, "count": 0.0, "tokens": 0.0, "steps": 0, "time": time.perf_counter()}
    window_sums: dict[str, float] = {}
    if resume and "window" in state:
        window.update(state["window"])
        window_sums = dict(state["window_sums"])
    stopped_by = "steps"
    snap = snapshot()
    try:
        while True:
            elapsed = time.perf_counter() - start
            done = config.max_steps is not None and step >= config.max_steps
            if budget_seconds is not None and elapsed >= budget_seconds:
                done, stopped_by = True, "minutes"
            if last_metrics.get("stop"):  # the evaluation hook asked for it (early stopping)
                done, stopped_by = True, "evaluate"
            if world > 1:  # the clock differs per process: rank 0 decides for all
                flag = torch.tensor([float(done)], device=device)
                torch.distributed.broadcast(flag, 0)
                done = bool(flag.item())
            if done:
                break
            snap = snapshot()  # the state "before this step": what a checkpoint must hold
            factor = lr_factor(progress_of(step, elapsed), warmup_fraction)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * factor

            loss_sum, count_sum, sums = 0.0, 0.0, {}
            for micro in range(config.accumulation):
                batch = to_device(next(batches), device)
                sync = world == 1 or micro == config.accumulation - 1
                context = wrapped.no_sync() if not sync else _null_context()
                with context:
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                        loss, metrics = loss_fn(wrapped, batch)
                    count = _number(metrics.get("count", 1))
                    # mean * count = sum over the micro-batch; divided by the global count below
                    (loss.float() * count).backward()
                loss_sum += float(loss.detach()) * count
                count_sum += count
                for key, value in metrics.items():
                    sums[key] = sums.get(key, 0.0) + _number(value)
            loss_sum, count_sum = _all_reduce_sum([loss_sum, count_sum], device)
            if not math.isfinite(loss_sum):
                optimizer.zero_grad(set_to_none=True)
                path = save(step, time.perf_counter() - start, snap)
                raise TrainingError(
                    f"the training loss became {loss_sum} at step {step + 1} (learning rate "
                    f"{config.lr * factor:.3g}); stopped before updating the weights. The state "
                    f"before that step is saved in {path or checkpoint_paths(out_dir)[-1:]}; lower "
                    "--lr or raise --warmup, then resume or restart"
                )
            if count_sum > 0:
                # DDP averaged the gradient over `world` processes: undo that, divide by the count.
                for param in model.parameters():
                    if param.grad is not None:
                        param.grad.mul_(world / count_sum)
                grad_norm = float(
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or float("inf"))
                )
                if not math.isfinite(grad_norm):
                    optimizer.zero_grad(set_to_none=True)
                    path = save(step, time.perf_counter() - start, snap)
                    raise TrainingError(
                        f"the gradient norm became {grad_norm} at step {step + 1}; stopped before "
                        f"updating the weights. The state before that step is saved in {path}"
                    )
                optimizer.step()
            else:
                grad_norm = 0.0
            optimizer.zero_grad(set_to_none=True)
            step += 1

            window["loss"] += loss_sum
            window["count"] += count_sum
            window["steps"] += 1
            for key, value in sums.items():
                window_sums[key] = window_sums.get(key, 0.0) + value
            if bar is not None:
                bar.update(1)
            if step % config.log_every == 0 or step == config.max_steps:
                now = time.perf_counter()
                seconds = max(1e-9, now - window["time"])
                record = {
                    "split": "train",
                    "step": step,
                    "elapsed": round(now - start, 2),
                    "lr": config.lr * factor,
                    "loss": window["loss"] / max(window["count"], 1e-12),
                    "grad_norm": grad_norm,
                }
                if "tokens" in window_sums:
                    record["tokens_per_s"] = window_sums["tokens"] * world / seconds
                if "correct" in window_sums and window_sums.get("count"):
                    record["accuracy"] = window_sums["correct"] / window_sums["count"]
                log.write(record)
                if bar is not None:
                    shown = {"loss": f"{record['loss']:.3f}", "lr": f"{record['lr']:.2g}"}
                    if "tokens_per_s" in record:
                        shown["tok/s"] = f"{record['tokens_per_s']:.0f}"
                    if budget_seconds is not None:
                        shown["left"] = f"{max(0, budget_seconds - (now - start)) / 60:.1f}min"
                    if last_metrics.get("accuracy") is not None:
                        shown["eval_acc"] = f"{last_metrics['accuracy']:.3f}"
                    bar.set_postfix(shown, refresh=False)
                window = {"loss": 0.0, "count": 0.0, "tokens": 0.0, "steps": 0, "time": now}
                window_sums = {}
            if config.eval_every and step % config.eval_every == 0:
                run_evaluation(step, time.perf_counter() - start)
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                last_checkpoint = save(step, time.perf_counter() - start, snapshot()) or last_checkpoint
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        path = save(step, time.perf_counter() - start, snap)
        if main_process:
            print(
                f"\ninterrupted at step {step}: saved {path}. To continue, run the same command "
                "again with --resume",
                file=sys.stderr,
            )
        raise
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - start
    if evaluate is not None and not (config.eval_every and step % config.eval_every == 0 and step > 0):
        run_evaluation(step, elapsed)
    last_checkpoint = save(step, elapsed, snapshot()) or last_checkpoint
    if main_process and config.plot:
        plot_curves(out_dir)
    return TrainResult(step=step, metrics=last_metrics, checkpoint=last_checkpoint,
                       elapsed=elapsed, stopped_by=stopped_by)


class _null_context:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
