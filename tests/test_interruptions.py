"""kill -9 a pretraining run at random moments: no checkpoint is ever half-written, and ``--resume``
reproduces the uninterrupted run exactly.

Each trial starts ``minirob pretrain`` (a tiny model on a synthetic corpus) in a subprocess whose
checkpoint writer has been made slow -- ``torch.save`` writes the bytes in 8 chunks with a pause
between them, announcing each write on stdout -- and SIGKILLs it either in the middle of a
checkpoint write or at a random offset after training started. After every kill:

* every ``checkpoints/step-*.pt`` loads (through the same allow-list reader ``--resume`` uses) and
  holds the step its name says; the last one is complete; a half-written temporary never carries a
  checkpoint's name;
* the next trial continues with ``--resume``.

Finally the run is resumed to its end and compared with an uninterrupted run of the same command:
the logged training and held-out losses, the final evaluation, and every weight are bit-identical.
(The reference is the uninterrupted run, the standard any resume must meet.)
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from reliability_helpers import write_corpus
from safetensors.torch import load_file

from minirob.safe_pickle import safe_torch_load
from minirob.train import checkpoint_paths, read_metrics

STEPS = 24
CHECKPOINT_EVERY = 2
KILLS_DURING_WRITE = 2  # SIGKILL while a checkpoint's bytes are being written
KILLS_AT_RANDOM = 2  # SIGKILL at a random offset after the first checkpoint write began

# Runs `minirob pretrain ARGV...`; with SLOW_SAVE set, torch.save writes in chunks, slowly.
WORKER = r"""
import io, os, sys, time
import torch
delay = float(os.environ.get("SLOW_SAVE", "0"))
if delay:
    real_save = torch.save
    def slow_save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        print("WRITING", getattr(f, "name", f), flush=True)
        chunk = max(1, len(data) // 8)
        for start in range(0, len(data), chunk):
            f.write(data[start:start + chunk])
            f.flush()
            time.sleep(delay)
    torch.save = slow_save
from minirob.cli import main
sys.exit(main(sys.argv[1:]))
"""


def command(corpus: Path, out: Path, resume: bool) -> list[str]:
    return [
        "pretrain", "--corpus", "files", "--files", str(corpus), "--out", str(out),
        "--steps", str(STEPS), "--checkpoint-every", str(CHECKPOINT_EVERY), "--eval-every", "12",
        "--layers", "1", "--hidden", "16", "--heads", "2", "--vocab-size", "300",
        "--max-length", "32", "--batch-size", "8", "--bf16", "off", "--no-progress", "--seed", "3",
    ] + (["--resume"] if resume else [])


def start(argv: list[str], slow: float, log: Path) -> tuple[subprocess.Popen, queue.Queue]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", SLOW_SAVE=str(slow))
    process = subprocess.Popen([sys.executable, "-c", WORKER, *argv], stdout=subprocess.PIPE,
                               stderr=open(log, "a"), text=True, env=env)
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def wait_for_write(lines: queue.Queue, count: int, deadline: float) -> bool:
    """Block until the worker announced its ``count``-th checkpoint write; False if it ended first."""
    seen = 0
    while seen < count:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if line is None:
            return False
        seen += line.startswith("WRITING")
    return True


def check_checkpoints(out: Path) -> int:
    """Every named checkpoint is complete and says its own step; returns the last step (0: none)."""
    last = 0
    for path in checkpoint_paths(out):
        state = safe_torch_load(path)  # raises on a truncated file
        assert state["step"] == int(path.stem.split("-")[1]), path
        assert set(state) >= {"model", "optimizer", "batches", "rng", "fingerprint"}
        last = state["step"]
    return last


def comparable(records: list[dict]) -> list[dict]:
    """metrics.jsonl without what depends on the clock."""
    drop = {"elapsed", "tokens_per_s"}
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_reproduces_the_run(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", documents=40)
    log = tmp_path / "stderr.log"
    rng = random.Random(os.environ.get("MINIROB_KILL_SEED", 2026))

    reference = tmp_path / "reference"  # the uninterrupted run, alongside the trials (2 cores)
    uninterrupted, _ = start(command(corpus, reference, False), slow=0, log=tmp_path / "reference.log")

    out = tmp_path / "killed"
    trials = ["write"] * KILLS_DURING_WRITE + ["random"] * KILLS_AT_RANDOM
    rng.shuffle(trials)
    history = []
    for kind in trials:
        resume = bool(checkpoint_paths(out))
        process, lines = start(command(corpus, out, resume), slow=0.04, log=log)
        deadline = time.monotonic() + 120
        try:
            # kill while writing the 1st or 2nd checkpoint of this process, a random way into it;
            # or anywhere from 0 to 1.5 s after this process's first checkpoint write began
            if wait_for_write(lines, rng.randint(1, 2) if kind == "write" else 1, deadline):
                time.sleep(rng.uniform(0.0, 0.3) if kind == "write" else rng.uniform(0.0, 1.5))
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL, f"trial {kind}: ended by itself: {log.read_text()[-2000:]}"
        leftovers = sorted(p.name for p in (out / "checkpoints").glob(".step-*"))
        history.append({"kind": kind, "resumed": resume, "last_step": check_checkpoints(out),
                        "half_written": leftovers})
    print("kill trials:", json.dumps(history, indent=1))
    assert all(h["last_step"] > 0 for h in history)  # every kill came after a complete checkpoint
    assert sum(bool(h["half_written"]) for h in history) >= 2, history  # kills did hit writes

    final = subprocess.run([sys.executable, "-c", WORKER, *command(corpus, out, True)],
                           env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
                           capture_output=True, text=True, timeout=240)
    assert final.returncode == 0, final.stderr[-2000:]
    assert not list((out / "checkpoints").glob(".step-*")), "temporaries of killed writers remain"
    assert uninterrupted.wait(timeout=240) == 0, (tmp_path / "reference.log").read_text()[-2000:]

    assert comparable(read_metrics(out)) == comparable(read_metrics(reference))
    train_losses = [r["loss"] for r in read_metrics(out) if r["split"] == "train"]
    assert len(train_losses) == STEPS // 10 + (STEPS % 10 > 0)  # log every 10 steps and at the end
    ours, theirs = (json.loads((d / "final_eval.json").read_text()) for d in (out, reference))
    for key in ("loss", "accuracy", "count", "step"):
        assert ours[key] == theirs[key], key
    ours, theirs = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
