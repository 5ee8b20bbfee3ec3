"""Exact resume whatever was running: a toy run is stopped inside each phase of step 8 (or the
checkpoint write of step 9) and resumed; the final weights and every logged line must equal those
of an uninterrupted run, bit for bit.

Stops come two ways: Ctrl-C (a ``KeyboardInterrupt`` raised from a patched function, or a real
SIGINT in the optimiser step) and, in a subprocess, ``kill -9`` (no handler runs; the resume starts
from the last checkpoint on disk). The reference is the uninterrupted run of the same toy problem.
Dropout is on, so a resume that mixed up the random generators or repeated a batch would differ
(issue 15: Ctrl-C in the evaluation of step 8 used to save step 8's weights with step 7's batch
position, and the resumed weights differed by 0.017).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import minirob.train as loop
from minirob.run_log import MetricsLog
from minirob.train import ShuffledBatches, TrainConfig, checkpoint_paths, evaluate_batches, read_metrics, train

STOP_STEP = 8  # eval_every=4: step 8 has a log line, an evaluation and (plot) curves


def toy_data(n=96):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=generator)
    return list(zip(x, ((x[:, 0] + x[:, 1]) > 0).long()))


def collate(examples):
    return {"x": torch.stack([e[0] for e in examples]), "y": torch.stack([e[1] for e in examples])}


def toy_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.2), nn.GELU(), nn.Linear(16, 2))


def loss_fn(model, batch):
    logits = model(batch["x"])
    return F.cross_entropy(logits, batch["y"]), {"count": len(batch["y"]), "correct": (logits.argmax(-1) == batch["y"]).sum()}


def evaluate(model):
    return evaluate_batches(model, loss_fn, [collate(toy_data()[:32])])


def run(out: Path, resume=False, loss=loss_fn, plot=False):
    model = toy_model(seed=123 if resume else 0)
    config = TrainConfig(out_dir=str(out), lr=0.02, max_steps=12, warmup=0.1, eval_every=4, checkpoint_every=3,
                         log_every=2, keep_checkpoints=2, progress=False, plot=plot, bf16="off", device="cpu")
    train(model, loss, ShuffledBatches(toy_data(), 16, collate), config, evaluate=evaluate, resume=resume)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def install(phase: str, stop, setattr) -> dict:
    """Patch the loop so that ``stop()`` happens inside ``phase``; returns run() keyword arguments."""
    calls = {"n": 0}

    def nth(n):
        calls["n"] += 1
        return calls["n"] == n

    if phase == "loss":
        def loss(model, batch):
            if nth(STOP_STEP):
                stop()
            return loss_fn(model, batch)
        return {"loss": loss}
    if phase == "backward":
        def loss(model, batch):
            value, metrics = loss_fn(model, batch)
            if nth(STOP_STEP):
                value.register_hook(lambda grad: stop())
            return value, metrics
        return {"loss": loss}
    if phase == "optimizer step":  # the weights have moved, the step is not yet counted
        real_step = torch.optim.AdamW.step

        def step(self, *args, **kwargs):
            result = real_step(self, *args, **kwargs)
            if nth(STOP_STEP):
                stop(real_signal=True)
            return result
        setattr(torch.optim.AdamW, "step", step)
    elif phase == "evaluation":
        real_evaluate = evaluate

        def evaluating(model):
            if nth(2):  # the evaluation of step 8
                stop()
            return real_evaluate(model)
        return {"evaluate": evaluating}
    elif phase == "checkpoint write":  # half the bytes of step 9's checkpoint are on disk
        real_save = torch.save

        def save(obj, handle, *args, **kwargs):
            if nth(3):
                handle.write(b"PK\x03\x04 half a checkpoint")
                handle.flush()
                stop()
            return real_save(obj, handle, *args, **kwargs)
        setattr(torch, "save", save)
    elif phase == "logging":  # the step-8 line is written, its count not yet kept
        real_write = MetricsLog.write

        def write(self, record):
            real_write(self, record)
            if record.get("step") == STOP_STEP and record["split"] == "train" and nth(1):
                stop()
        setattr(MetricsLog, "write", write)
    elif phase == "plot":
        def plot(run_dir, path=None):
            if nth(2):
                stop()
        setattr(loop, "plot_curves", plot)
        return {"plot": True}
    return {}


def keyboard_interrupt(real_signal=False):
    if real_signal:
        signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, delivered by the OS
    else:
        raise KeyboardInterrupt


def comparable(out: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "elapsed"} for r in read_metrics(out)]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    return run(out), comparable(out)


PHASES = ["loss", "backward", "optimizer step", "evaluation", "checkpoint write", "logging", "plot"]


@pytest.mark.parametrize("phase", PHASES)
def test_ctrl_c_in_any_phase_then_resume_equals_the_uninterrupted_run(phase, straight, tmp_path, monkeypatch):
    out = tmp_path / "run"
    options = install(phase, keyboard_interrupt, monkeypatch.setattr)
    evaluating = options.pop("evaluate", None)
    if evaluating is not None:
        monkeypatch.setattr(sys.modules[__name__], "evaluate", evaluating)
    with pytest.raises(KeyboardInterrupt):
        run(out, **options)
    assert not list((out / "checkpoints").glob(".step-*")), "a temporary was left behind"
    monkeypatch.undo()
    torch.manual_seed(999)  # the resumed run must not depend on the new process's generators
    weights, records = straight
    assert torch.equal(run(out, resume=True), weights), phase
    assert comparable(out) == records


WORKER = r"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import test_resume_phases as t
kill = lambda real_signal=False: os.kill(os.getpid(), signal.SIGKILL)
options = t.install(sys.argv[2], kill, setattr)
if "evaluate" in options:
    t.evaluate = options.pop("evaluate")
t.run(Path(sys.argv[1]), **options)
"""


@pytest.mark.parametrize("phase", ["optimizer step", "evaluation", "checkpoint write", "logging"])
def test_kill_9_in_a_phase_then_resume_equals_the_uninterrupted_run(phase, straight, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    killed = subprocess.run([sys.executable, "-c", WORKER.format(tests=str(Path(__file__).parent)), str(out), phase],
                            env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [p.name for p in checkpoint_paths(out)][-1] == "step-0000006.pt"
    assert (out / "run.lock").exists()  # left by the killed writer: taken over below
    torch.manual_seed(999)
    weights, records = straight
    assert torch.equal(run(out, resume=True), weights), phase
    assert comparable(out) == records
    assert not list((out / "checkpoints").glob(".step-*")) and not (out / "run.lock").exists()
