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
continues with the very next batch. :class:`~minirob.batches.ShuffledBatches` is one for lists of
examples.

The loop, as :func:`train` reads::

    while not run.finished():                    # step budget, clock budget, or a hook said stop
        run.set_learning_rate()                  # linear warm-up, then linear decay to zero
        sums = forward_backward(run, loss_fn)    # `accumulation` micro-batches, bf16 autocast
        with interrupts_deferred():              # Ctrl-C waits: a step is taken whole or not at all
            grad_norm = optimizer_step(run, ...) # global-mean gradient, clipped, AdamW
            run.advance(...)                     # step += 1, log window, the after-step snapshot
        run.run_hooks(hooks)                     # log line, evaluation, checkpoint (minGPT-style)

Hooks are functions of the run, called after every step: :func:`log_hook` (every ``log_every``
steps), :func:`evaluation_hook` (every ``eval_every``: ``evaluate(model)``, whose ``"stop": True``
ends the run: early stopping) and :func:`checkpoint_hook` (every ``checkpoint_every``, keeping the
last ``keep_checkpoints``). At the end: a last evaluation and checkpoint. Loss or gradient not
finite: stop with :class:`TrainingError` naming the step, after saving the state from before the
bad step. Ctrl-C: save the state after the last completed step, say how to resume, re-raise.

Where the rest lives: :mod:`minirob.run_state` (what a checkpoint holds, resume, atomic writes),
:mod:`minirob.run_log` (metrics.jsonl, the bar, curves.png, run.json), :mod:`minirob.run_lock` (one
writer per run directory), :mod:`minirob.distributed`. Run directory (``out_dir``): ``run.json``,
``metrics.jsonl``, ``curves.png``, ``checkpoints/step-XXXXXXX.pt``, ``run.lock`` while running.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from .batches import ShuffledBatches  # noqa: F401  (re-exported: part of this module's API)
from .compiled import compile_model
from .distributed import (
    all_reduce_sum,
    distributed,
    gradient_sync,
    rank_zero_decides,
    resolve_device,
    wrap_model,
)
from .errors import ConfigError, TrainingError
from .run_lock import RunLock
from .run_log import (  # noqa: F401  (read_metrics, plot_curves re-exported)
    LogWindow,
    MetricsLog,
    ProgressBar,
    plot_curves,
    read_metrics,
    write_run_info,
)
from .run_state import (  # noqa: F401  (checkpoint_paths re-exported)
    checkpoint_name,
    checkpoint_paths,
    fingerprint,
    interrupts_deferred,
    prune,
    read_checkpoint,
    remove_dead_temporaries,
    restore,
    rng_state,
    save_atomic,
    set_rng_state,
)

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
    compile: bool = False  # torch.compile the model's parts (minirob.compiled); pays on CUDA, not on CPU

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.max_steps is None and self.minutes is None:
            raise ConfigError("TrainConfig needs a budget: max_steps and/or minutes")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"minutes must be > 0, got {self.minutes}")
        if self.accumulation < 1:
            raise ConfigError(f"accumulation must be >= 1, got {self.accumulation}")
        if self.bf16 not in ("auto", "on", "off"):
            raise ConfigError(f"bf16={self.bf16!r} is not one of auto, on, off")
        if not self.lr > 0 or not self.warmup >= 0:
            raise ConfigError(f"lr must be > 0 and warmup >= 0, got lr={self.lr} warmup={self.warmup}")
        if self.warmup >= 1 and self.max_steps is None:
            raise ConfigError("warmup given in steps needs max_steps; with --minutes use a fraction < 1")


@dataclass
class TrainResult:
    step: int  # optimiser steps done
    metrics: dict[str, float]  # the last evaluation (empty without an evaluate function)
    checkpoint: Path | None  # the last checkpoint written
    elapsed: float  # seconds of training (summed over resumed runs)
    stopped_by: str  # "steps" | "minutes" | "evaluate" (the hook returned {"stop": True})


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
    for param in model.parameters():
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


# ------------------------------------------------------------------------ the run in progress
class Run:
    """One training run in progress: what the loop advances and what the hooks read.

    It holds the model (and its DDP wrapper), the optimizer, the batch source, the step count and
    clock, the run log, and ``after_step``: a copy of everything that moves during a step (batch
    position, random generators, log position), taken when the last step completed. Any checkpoint
    written between two steps (a hook's, Ctrl-C's, a NaN's) is that copy plus the model and optimizer,
    which change only inside the interrupt-safe commit of a step.
    """

    def __init__(self, model: nn.Module, batches, config: TrainConfig, run_info: dict, resume: bool):
        self.model, self.batches, self.config = model, batches, config
        self.rank, self.world = distributed()
        self.main = self.rank == 0
        self.device = resolve_device(config.device)
        model.to(self.device)
        model.train()
        if config.compile:
            compile_model(model)  # in place: state_dict names, checkpoints and hooks are unchanged
        self.bf16 = config.bf16 == "on" or (config.bf16 == "auto" and bf16_supported(self.device))
        self.out_dir = Path(config.out_dir)
        self.optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr,
                                           betas=config.betas, eps=config.eps)
        self.fingerprint = fingerprint(model, dataclasses.asdict(config), run_info)
        self.step, self.elapsed_before, self.metrics, self.lr = 0, 0.0, {}, config.lr
        self.checkpoint: Path | None = None
        self.stopped_by, self.elapsed = "steps", 0.0
        self.budget = config.minutes * 60 if config.minutes is not None else None
        self.warmup = config.warmup / config.max_steps if config.warmup >= 1 else config.warmup
        self.log = MetricsLog(self.out_dir / "metrics.jsonl", self.main)
        self.window = LogWindow()
        self.bar = ProgressBar(False, None, 0)
        self.lock = RunLock(self.out_dir) if self.main else None
        if self.lock is not None:
            self.lock.acquire()  # one writer per run directory, until close()
        try:
            self._open(run_info, resume)
        except BaseException:
            self.close()
            raise

    def _open(self, run_info: dict, resume: bool) -> None:
        """Start afresh or from the last checkpoint; write run.json; start the clock."""
        existing = checkpoint_paths(self.out_dir)
        if self.main:
            remove_dead_temporaries(self.out_dir / "checkpoints")
        if resume:
            if not existing:
                raise TrainingError(f"--resume: no checkpoint in {self.out_dir / 'checkpoints'}")
            self.checkpoint = existing[-1]
            state = read_checkpoint(self.checkpoint, self.fingerprint)
            restore(state, self.checkpoint, self.model, self.optimizer, self.batches)
            self.step, self.elapsed_before = state["step"], float(state["elapsed"])
            self.metrics = dict(state.get("metrics", {}))
            self.log.rewind(state.get("metrics_lines", 0))
            self.window.load(state)
            pending = bool(state.get("hooks_pending", False))
        else:
            if existing:
                raise TrainingError(f"{self.out_dir} already holds checkpoints ({existing[-1].name}); "
                                    "pass --resume to continue that run, or choose another --out directory")
            torch.manual_seed(self.config.seed)
            random.seed(self.config.seed)
            np.random.seed(self.config.seed)
            if self.main:
                (self.out_dir / "metrics.jsonl").unlink(missing_ok=True)
            pending = False
        if self.main:
            write_run_info(self.out_dir, {
                "seed": self.config.seed, "train_config": dataclasses.asdict(self.config),
                "world_size": self.world, "device": str(self.device), "bf16": self.bf16,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "resumed_from": str(self.checkpoint) if resume else None, **run_info,
            }, resumed_at=self.step if resume else None)
        self.wrapped = wrap_model(self.model, self.device)
        self.bar = ProgressBar(self.config.progress and self.main, self.config.max_steps, self.step)
        self.start = time.perf_counter() - self.elapsed_before
        self.window.started = time.perf_counter()
        self.after_step = {**self.position(), "hooks_pending": pending}

    # -- the state a checkpoint holds ---------------------------------------------------------
    def clock(self) -> float:
        return time.perf_counter() - self.start

    def log_position(self) -> dict:
        return {**self.window.state(), "metrics_lines": self.log.lines, "metrics": dict(self.metrics)}

    def position(self) -> dict:
        """Everything but model and optimizer that a checkpoint after this step must hold."""
        return {"step": self.step, "batches": self.batches.state_dict(), "rng": rng_state(),
                **self.log_position()}

    def save(self, position: dict) -> Path | None:
        """Write the checkpoint of ``position`` (rank 0), keep the newest ``keep_checkpoints``."""
        if not self.main:
            return None
        path = self.out_dir / "checkpoints" / checkpoint_name(position["step"])
        save_atomic({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                     **position, "elapsed": self.clock(), "fingerprint": self.fingerprint,
                     "train_config": dataclasses.asdict(self.config)}, path)
        prune(self.out_dir, self.config.keep_checkpoints)
        self.checkpoint = path
        return path

    # -- the loop's verbs ---------------------------------------------------------------------
    def finished(self) -> bool:
        self.elapsed = self.clock()
        done = self.config.max_steps is not None and self.step >= self.config.max_steps
        if self.budget is not None and self.elapsed >= self.budget:
            done, self.stopped_by = True, "minutes"
        if self.metrics.get("stop"):  # the evaluation hook asked for it (early stopping)
            done, self.stopped_by = True, "evaluate"
        return rank_zero_decides(done, self.device)  # the clock differs per process

    def set_learning_rate(self) -> None:
        fractions = []
        if self.config.max_steps is not None:
            fractions.append((self.step + 1) / self.config.max_steps)  # step k trains as the (k+1)-th
        if self.budget is not None:
            fractions.append(self.elapsed / self.budget)
        self.lr = self.config.lr * lr_factor(min(1.0, max(fractions)), self.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def advance(self, loss_sum: float, count_sum: float, sums: dict, grad_norm: float) -> None:
        """A step is complete: count it, add it to the log window, copy the state after it."""
        self.step += 1
        self.window.add(loss_sum, count_sum, sums, self.lr, grad_norm)
        self.bar.tick()
        self.after_step = {**self.position(), "hooks_pending": True}

    def run_hooks(self, hooks: list[Callable[["Run"], bool]]) -> None:
        """Run this step's hooks; then the after-step copy includes what they logged, and the
        random generators are put back (a hook never changes what the next step draws)."""
        fired = [hook(self) for hook in hooks]
        self.after_step.update(self.log_position(), hooks_pending=False)
        if any(fired):
            set_rng_state(self.after_step["rng"])

    def evaluate(self, evaluate: EvalFn) -> None:
        if self.main:
            self.metrics = evaluate(self.model)
            self.log.write({"split": "eval", "step": self.step, "elapsed": round(self.clock(), 2), **self.metrics})
            if self.config.plot:
                plot_curves(self.out_dir)
        if self.world > 1:
            torch.distributed.barrier()

    def stop_before_bad_step(self, what: str, advice: str = "") -> None:
        """Loss or gradient not finite: save the state before this step and stop, saying so."""
        self.optimizer.zero_grad(set_to_none=True)
        path = self.save(self.after_step) or (checkpoint_paths(self.out_dir)[-1:] or [None])[0]
        raise TrainingError(f"{what} at step {self.step + 1}{advice}; stopped before updating the weights. "
                            f"The state before that step is saved in {path}" + (
                                "; lower --lr or raise --warmup, then resume or restart" if advice else ""))

    def finish(self, evaluate: EvalFn | None) -> None:
        """The end of the budget: a last evaluation (unless this step had one), checkpoint, curves."""
        self.bar.close()
        self.elapsed = self.clock()
        every = self.config.eval_every
        if evaluate is not None and not (every and self.step % every == 0 and self.step > 0):
            self.evaluate(evaluate)
        self.save({**self.after_step, **self.log_position(), "hooks_pending": False})
        if self.main and self.config.plot:
            plot_curves(self.out_dir)

    def save_interrupted(self) -> None:
        self.bar.close()
        path = self.save(self.after_step)
        if self.main:
            print(f"\ninterrupted at step {self.step}: saved {path}. To continue, run the same command "
                  "again with --resume", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
        if self.lock is not None:
            self.lock.release()

    def result(self) -> TrainResult:
        return TrainResult(step=self.step, metrics=self.metrics, checkpoint=self.checkpoint,
                           elapsed=self.elapsed, stopped_by=self.stopped_by)


# ------------------------------------------------------------------------ one step
def forward_backward(run: Run, loss_fn: LossFn) -> tuple[float, float, dict[str, float]]:
    """``accumulation`` micro-batches: forward (bf16 autocast if on), backward of mean x count.

    Returns the loss sum and item count over all micro-batches and processes, and this process's
    metric sums. The gradients hold the *sum* over the items; :func:`optimizer_step` divides.
    """
    loss_sum, count_sum, sums = 0.0, 0.0, {}
    for micro in range(run.config.accumulation):
        batch = to_device(next(run.batches), run.device)
        with gradient_sync(run.wrapped, sync=micro == run.config.accumulation - 1):
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.bf16):
                loss, metrics = loss_fn(run.wrapped, batch)
            count = _number(metrics.get("count", 1))
            (loss.float() * count).backward()  # mean * count = sum over the micro-batch
        loss_sum += float(loss.detach()) * count
        count_sum += count
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + _number(value)
    loss_sum, count_sum = all_reduce_sum([loss_sum, count_sum], run.device)
    return loss_sum, count_sum, sums


def optimizer_step(run: Run, loss_sum: float, count_sum: float) -> float:
    """Gradient to the global mean, clipped, one AdamW step; returns the gradient norm."""
    if not math.isfinite(loss_sum):
        run.stop_before_bad_step(f"the training loss became {loss_sum}", f" (learning rate {run.lr:.3g})")
    grad_norm = 0.0
    if count_sum > 0:
        for param in run.model.parameters():  # DDP averaged over `world` processes: undo, divide by count
            if param.grad is not None:
                param.grad.mul_(run.world / count_sum)
        grad_norm = float(nn.utils.clip_grad_norm_(run.model.parameters(), run.config.grad_clip or float("inf")))
        if not math.isfinite(grad_norm):
            run.stop_before_bad_step(f"the gradient norm became {grad_norm}")
        run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return grad_norm


# ------------------------------------------------------------------------ hooks
def log_hook(run: Run) -> bool:
    """Every ``log_every`` steps and at the last: the window's means to metrics.jsonl and the bar."""
    if not (run.step % run.config.log_every == 0 or run.step == run.config.max_steps):
        return False
    now = time.perf_counter()
    record = run.window.record(run.step, now - run.start, run.world, now)
    run.log.write(record)
    left = run.budget - (now - run.start) if run.budget is not None else None
    run.bar.show(record, left, run.metrics.get("accuracy"))
    run.window.reset(now)
    return True


def evaluation_hook(evaluate: EvalFn | None) -> Callable[[Run], bool]:
    """Every ``eval_every`` steps: ``evaluate(model)``, logged (and curves.png redrawn)."""

    def evaluation(run: Run) -> bool:
        every = run.config.eval_every
        if evaluate is None or not (every and run.step % every == 0):
            return False
        run.evaluate(evaluate)
        return True

    return evaluation


def checkpoint_hook(run: Run) -> bool:
    """Every ``checkpoint_every`` steps: the state after this step and its hooks, atomically."""
    every = run.config.checkpoint_every
    if not (every and run.step % every == 0):
        return False
    run.save({**run.after_step, **run.log_position(), "hooks_pending": False})
    return True


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
    run = Run(model, batches, config, run_info or {}, resume)
    hooks = [log_hook, evaluation_hook(evaluate), checkpoint_hook]
    try:
        if run.after_step["hooks_pending"]:  # stopped inside the last step's hooks: run them now
            run.run_hooks(hooks)
        while not run.finished():
            run.set_learning_rate()
            loss_sum, count_sum, sums = forward_backward(run, loss_fn)
            with interrupts_deferred():  # Ctrl-C waits: the step is taken and recorded, or not at all
                grad_norm = optimizer_step(run, loss_sum, count_sum)
                run.advance(loss_sum, count_sum, sums, grad_norm)
            run.run_hooks(hooks)
        run.finish(evaluate)
    except KeyboardInterrupt:
        run.save_interrupted()
        raise
    finally:
        run.close()
    return run.result()
