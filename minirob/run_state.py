"""Run state: what a checkpoint holds, how it is written and how ``--resume`` puts it back.

A checkpoint is the state *after the last completed optimiser step*: the model and optimizer, the
batch source's position, every random generator, the step count and clock, the run log's position
(``metrics_lines`` and the open log window) and the last evaluation, plus a *fingerprint* (parameter
shapes and the recipe) that a resumed run must match. ``hooks_pending`` says whether the hooks of
that step (log line, evaluation, checkpoint) had not all run when the run stopped: a resumed run
runs them first, so it writes exactly the lines and evaluations an uninterrupted run writes.

How that holds whatever was running when the run stopped (see docs/training.md):

- between steps, the model and optimizer only change inside ``optimizer.step()``; a Ctrl-C that
  arrives there waits until the step is taken and recorded (:func:`interrupts_deferred`);
- everything else (batch position, generators, log window) is copied at the end of each step
  (the loop's ``after_step`` snapshot), so a Ctrl-C in the next forward pass or in a hook saves that
  copy, not the half-advanced live objects.

Writes are atomic: ``torch.save`` to a temporary in the same folder, ``fsync``, ``os.replace``. A
failed write (disk full...) removes its temporary and raises one line naming the path. Checkpoints
are named ``step-0000042.pt`` and ordered by number. Loading goes through the allow-list reader
(:func:`minirob.safe_pickle.safe_torch_load`) and every field is checked before use: a damaged one
is a :class:`CheckpointError` naming the field and the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .errors import CheckpointError, TrainingError, out_of_space, printable
from .run_lock import process_alive
from .safe_pickle import safe_torch_load

# Fields a resumable checkpoint must have (older checkpoints lack only the optional ones).
REQUIRED = ("model", "optimizer", "batches", "rng", "step", "elapsed", "fingerprint")
# TrainConfig fields that may change between a run and its resume (budgets, cadences, display).
RESUMABLE_CHANGES = ("out_dir", "progress", "plot", "device", "minutes", "max_steps", "eval_every",
                     "checkpoint_every", "keep_checkpoints", "log_every")
_TEMPORARY = re.compile(r"^\.step-\d+\.pt\.tmp(\d+)$")


# ------------------------------------------------------------------------ names and order
def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}.pt"  # 8 digits and more past step 9,999,999: order by number, below


def checkpoint_paths(out_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints in a run directory, oldest first (by step number, not by name)."""
    folder = Path(out_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    numbered = [(int(m.group(1)), p) for p in folder.glob("step-*.pt")
                if (m := re.fullmatch(r"step-(\d+)\.pt", p.name))]
    return [path for _, path in sorted(numbered)]


def prune(out_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints."""
    for old in checkpoint_paths(out_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def remove_dead_temporaries(folder: Path) -> None:
    """Delete ``.step-*.pt.tmpPID`` left by writers that died mid-write; never a live writer's."""
    for path in folder.glob(".step-*.pt.tmp*") if folder.is_dir() else []:
        match = _TEMPORARY.match(path.name)
        if match and not process_alive(int(match.group(1))):
            path.unlink(missing_ok=True)


# ------------------------------------------------------------------------ atomic writes
def _tensor_bytes(obj: Any) -> int:
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: never a half-written file.

    On failure the temporary is removed; out of space is a :class:`CheckpointError` naming the
    path and about how many bytes were needed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename makes it the checkpoint
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if out_of_space(error):
            raise CheckpointError(
                f"no space left on the device to write {path} (about "
                f"{_tensor_bytes(obj) / 1e6:.1f} MB needed); nothing was left half-written"
            ) from None
        raise


# ------------------------------------------------------------------------ what is saved
def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fingerprint(model: nn.Module, train_config: dict, extra: dict) -> dict:
    """What must match for --resume to make sense: parameter shapes and the recipe."""
    shapes = {name: list(p.shape) for name, p in model.state_dict().items()}
    keep = {k: v for k, v in train_config.items() if k not in RESUMABLE_CHANGES}
    return {"shapes": shapes, "train": json.loads(json.dumps(keep)), "extra": json.loads(json.dumps(extra))}


def describe_mismatch(saved: dict, now: dict) -> str:
    for section in ("train", "extra"):
        a, b = saved.get(section, {}), now.get(section, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return f"{section}.{key} was {a.get(key)!r:.100}, now {b.get(key)!r:.100}"
    a, b = saved.get("shapes", {}), now["shapes"]
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"parameter {key} had shape {a.get(key)}, now {b.get(key)}"
    return "unknown difference"


@contextlib.contextmanager
def interrupts_deferred():
    """A Ctrl-C (SIGINT) arriving inside the block is held and raised when the block ends.

    The loop wraps ``optimizer.step()`` and the bookkeeping of the step in it: a step is either
    not taken at all or taken and recorded, never half of it. (Only the main thread receives
    signals; elsewhere the block runs as is.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(*caught[0])  # the default handler raises KeyboardInterrupt here
        elif caught:
            raise KeyboardInterrupt


# ------------------------------------------------------------------------ resume
def _damaged(path: Path, field: str, why: object) -> CheckpointError:
    why = printable(why, limit=160)  # text from the file
    return CheckpointError(f"--resume: {path}: the field {field!r} is damaged ({why}); resume from an "
                           "earlier checkpoint (delete this one) or start a new --out directory")


def _check_number(path: Path, field: str, value: Any, whole: bool) -> None:
    kinds = (int,) if whole else (int, float)
    if not isinstance(value, kinds) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise _damaged(path, field, f"{value!r:.40} is not a {'whole ' if whole else ''}number >= 0")


def read_checkpoint(path: Path, expected_fingerprint: dict) -> dict:
    """The checkpoint at ``path``, checked to be a minirob training checkpoint of this run."""
    state = safe_torch_load(path)
    lacking = [key for key in REQUIRED if key not in state] if isinstance(state, dict) else list(REQUIRED)
    if lacking:
        raise TrainingError(f"--resume: {path} is not a minirob training checkpoint (no "
                            f"{', '.join(lacking)}); use a new --out directory")
    saved = state["fingerprint"]
    if not isinstance(saved, dict) or not isinstance(saved.get("shapes", {}), dict):
        raise _damaged(path, "fingerprint", f"a {type(saved).__name__}, not a dict")
    if saved != expected_fingerprint:
        raise TrainingError(f"--resume: {path} comes from another configuration "
                            f"({describe_mismatch(saved, expected_fingerprint)}); use a new --out "
                            "directory or the original settings")
    _check_number(path, "step", state["step"], whole=True)
    _check_number(path, "elapsed", state["elapsed"], whole=False)
    _check_number(path, "metrics_lines", state.get("metrics_lines", 0), whole=True)
    for field in ("metrics", "window", "window_sums"):
        if not isinstance(state.get(field, {}), dict):
            raise _damaged(path, field, f"a {type(state[field]).__name__}, not a dict")
    for field in ("window", "window_sums"):
        for key, value in state.get(field, {}).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise _damaged(path, field, f"{key!r:.40} is {value!r:.40}")
    return state


def _check_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Each parameter's moments have its shape (torch would only fail at the next step)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if not isinstance(value, Tensor):
                    raise ValueError(f"state {name!r} is a {type(value).__name__}, not a tensor")
                if value.dim() > 0 and value.shape != param.shape:
                    raise ValueError(f"state {name!r} has shape {list(value.shape)}, the parameter "
                                     f"{list(param.shape)}")


def restore(state: dict, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, batches) -> None:
    """Put a checked checkpoint back into the live objects; a field that does not fit is named."""
    weights = state["model"]
    if not isinstance(weights, dict) or not all(isinstance(v, Tensor) for v in weights.values()):
        raise _damaged(path, "model", "not a dict of tensors")
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        raise _damaged(path, "model", str(error).splitlines()[0] if str(error) else error) from None
    try:
        optimizer.load_state_dict(state["optimizer"])
        _check_optimizer_state(optimizer)
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise _damaged(path, "optimizer", error) from None
    position = state["batches"]
    if not isinstance(position, dict):
        raise _damaged(path, "batches", f"a {type(position).__name__}, not a dict")
    for key in ("epoch", "index"):
        if key in position:
            _check_number(path, "batches", position[key], whole=True)
    try:
        batches.load_state_dict(position)
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise _damaged(path, "batches", error) from None
    try:
        if not isinstance(state["rng"], dict):
            raise TypeError(f"a {type(state['rng']).__name__}, not a dict")
        set_rng_state(state["rng"])
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise _damaged(path, "rng", error) from None
