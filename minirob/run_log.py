"""The run log: what a run tells its reader while it trains and leaves behind afterwards.

- ``run.json``: seed, configuration, versions, device, data (``write_run_info``);
- ``metrics.jsonl``: one JSON object per line, ``"split": "train"`` every ``log_every`` steps
  (means over the steps since the previous line, kept in a :class:`LogWindow`) and
  ``"split": "eval"`` at each evaluation (:class:`MetricsLog`);
- the tqdm progress bar (:class:`ProgressBar`) and ``curves.png`` (:func:`plot_curves`).

Only rank 0 writes. The log's position (lines written, the open window) is part of every checkpoint,
so a resumed run first cuts ``metrics.jsonl`` back to that checkpoint and then logs exactly the
lines an uninterrupted run logs.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import __version__


def versions() -> dict[str, str]:
    return {
        "minirob": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def write_run_info(out_dir: Path, info: dict, resumed_at: int | None) -> None:
    """``run.json`` for a new run, ``run-resumed-stepN.json`` for each resume (nothing is lost)."""
    info = {**info, "versions": versions(), "argv": sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    name = "run.json" if resumed_at is None else f"run-resumed-step{resumed_at}.json"
    (out_dir / name).write_text(json.dumps(info, indent=2, default=str))


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` (rank 0 only).

    ``lines`` counts the records written; every checkpoint stores it, so that ``--resume`` first
    drops what was logged after that checkpoint (it is logged again) and any line a kill cut in half.
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


class LogWindow:
    """Sums over the steps since the last ``"train"`` line, turned into that line's means.

    ``sums`` adds up the loss function's metrics (``count``, ``correct``, ``tokens``...); ``lr`` and
    ``grad_norm`` are the last step's. ``state()``/``load()`` carry it through a checkpoint.
    """

    def __init__(self) -> None:
        self.reset(time.perf_counter())

    def reset(self, now: float) -> None:
        self.totals = {"loss": 0.0, "count": 0.0, "tokens": 0.0, "steps": 0}
        self.sums: dict[str, float] = {}
        self.started = now  # for tokens/s; the clock is not saved

    def add(self, loss_sum: float, count_sum: float, sums: dict[str, float], lr: float, grad_norm: float) -> None:
        self.totals["loss"] += loss_sum
        self.totals["count"] += count_sum
        self.totals["steps"] += 1
        self.totals["lr"], self.totals["grad_norm"] = lr, grad_norm
        for key, value in sums.items():
            self.sums[key] = self.sums.get(key, 0.0) + value

    def record(self, step: int, elapsed: float, world: int, now: float) -> dict:
        """The ``"train"`` line for the window ending at ``step``."""
        record = {
            "split": "train",
            "step": step,
            "elapsed": round(elapsed, 2),
            "lr": self.totals["lr"],
            "loss": self.totals["loss"] / max(self.totals["count"], 1e-12),
            "grad_norm": self.totals["grad_norm"],
        }
        if "tokens" in self.sums:
            record["tokens_per_s"] = self.sums["tokens"] * world / max(1e-9, now - self.started)
        if "correct" in self.sums and self.sums.get("count"):
            record["accuracy"] = self.sums["correct"] / self.sums["count"]
        return record

    def state(self) -> dict:
        return {"window": dict(self.totals), "window_sums": dict(self.sums)}

    def load(self, state: dict) -> None:
        self.totals.update(state.get("window", {}))
        self.sums = dict(state.get("window_sums", {}))


class ProgressBar:
    """The tqdm bar (rank 0, when asked for): one tick per step, the last log line as postfix."""

    def __init__(self, enabled: bool, total: int | None, initial: int):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm  # lazy: an optional display dependency

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                            desc="training", disable=None)

    def tick(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def show(self, record: dict, seconds_left: float | None, eval_accuracy: float | None) -> None:
        if self.bar is None:
            return
        shown = {"loss": f"{record['loss']:.3f}", "lr": f"{record['lr']:.2g}"}
        if "tokens_per_s" in record:
            shown["tok/s"] = f"{record['tokens_per_s']:.0f}"
        if seconds_left is not None:
            shown["left"] = f"{max(0.0, seconds_left) / 60:.1f}min"
        if eval_accuracy is not None:
            shown["eval_acc"] = f"{eval_accuracy:.3f}"
        self.bar.set_postfix(shown, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def read_metrics(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(run_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Training loss, evaluation loss and accuracy against step, from ``metrics.jsonl``, to a PNG."""
    # A bare Figure renders to a file without pyplot, so no global backend is switched
    # (switching to Agg inside Jupyter would turn off inline plots for the whole session).
    from matplotlib.figure import Figure  # lazy: heavy and optional

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
