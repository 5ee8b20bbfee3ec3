"""Run directories: one writer at a time (run.lock), checkpoints ordered by number, damaged resume
checkpoints named field by field, a full disk reported in one line with nothing half-written."""

from __future__ import annotations

import errno
import io
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from test_resume_phases import collate, loss_fn, toy_data, toy_model

import minirob.run_state as run_state
from minirob.cli import main
from minirob.errors import CheckpointError, TrainingError
from minirob.run_lock import RunLock
from minirob.train import ShuffledBatches, TrainConfig, checkpoint_paths, train


def config(out, **overrides):
    values = dict(out_dir=str(out), lr=0.02, max_steps=4, checkpoint_every=2, progress=False, plot=False,
                  bf16="off", device="cpu")
    return TrainConfig(**{**values, **overrides})


def toy_train(out, resume=False, **overrides):
    return train(toy_model(), loss_fn, ShuffledBatches(toy_data(), 16, collate), config(out, **overrides),
                 resume=resume)


# ------------------------------------------------------------------------ the lock
def test_a_second_writer_is_refused_with_the_holders_pid_host_and_start(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from minirob.run_lock import RunLock\n"
                               f"lock = RunLock({str(tmp_path / 'run')!r}); lock.acquire(); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TrainingError) as info:
            toy_train(tmp_path / "run")
        message = str(info.value)
        assert f"PID {holder.pid}" in message and socket.gethostname() in message and "started 20" in message
        assert "\n" not in message and not checkpoint_paths(tmp_path / "run")
    finally:
        holder.kill()
        holder.wait()
    toy_train(tmp_path / "run")  # the holder died (-9): its lock is stale and taken over
    assert len(checkpoint_paths(tmp_path / "run")) == 2 and not (tmp_path / "run" / "run.lock").exists()


def test_lock_is_reentrant_and_escapes_what_the_lock_file_says(tmp_path):
    with RunLock(tmp_path) as lock:
        with RunLock(tmp_path):  # pretrain() holds it, train() takes it again
            pass
        assert lock.path.exists()
    assert not lock.path.exists()
    lock.path.write_text(json.dumps({"pid": 1, "host": "elsewhere\n\x1b[31mFAKE", "started": "x"}))
    with pytest.raises(TrainingError) as info:
        RunLock(tmp_path).acquire()
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value) and "\\x1b" in str(info.value)


def test_the_lock_module_does_not_need_fcntl():
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import minirob.run_lock, minirob.train, minirob.pretrain; print('imported')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "imported"


def test_cleanup_removes_dead_writers_temporaries_never_a_live_ones(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = folder / f".step-0000002.pt.tmp{os.getppid()}"  # our parent: alive
    (folder / f".step-0000002.pt.tmp{dead.pid}").write_bytes(b"half")
    live.write_bytes(b"in flight")
    toy_train(tmp_path / "run")
    assert sorted(p.name for p in folder.glob(".step-*")) == [live.name]


# ------------------------------------------------------------------------ order by number
def test_checkpoints_are_ordered_by_step_number_past_ten_million(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for step in (9_999_998, 9_999_999, 10_000_000, 10_000_001):
        (folder / run_state.checkpoint_name(step)).write_bytes(b"")
    (folder / "step-notanumber.pt").write_bytes(b"")
    assert [p.name for p in checkpoint_paths(tmp_path)][-1] == "step-10000001.pt"
    run_state.prune(tmp_path, keep=2)
    assert [p.name for p in checkpoint_paths(tmp_path)] == ["step-10000000.pt", "step-10000001.pt"]


# ------------------------------------------------------------------------ damaged fields
DAMAGE = {
    "rng": lambda s: s.update(rng={"torch": torch.zeros(3), "python": None, "numpy": None}),
    "rng ": lambda s: s.update(rng=[1, 2]),
    "step": lambda s: s.update(step="eight"),
    "step ": lambda s: s.update(step=-3),
    "optimizer": lambda s: s.update(optimizer={"state": {}, "param_groups": "x"}),
    "optimizer ": lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(3)),
    "batches": lambda s: s.update(batches={"epoch": "one", "index": 2}),
    "batches ": lambda s: s.update(batches=None),
    "model": lambda s: s["model"].pop(next(iter(s["model"]))),
    "model ": lambda s: s["model"].update({next(iter(s["model"])): torch.zeros(2, 2)}),
    "elapsed": lambda s: s.update(elapsed=float("nan")),
}


@pytest.mark.parametrize("field", list(DAMAGE), ids=[f"{k.strip()}-{i}" for i, k in enumerate(DAMAGE)])
def test_a_damaged_field_is_named_with_the_file(field, tmp_path):
    toy_train(tmp_path / "run")
    path = checkpoint_paths(tmp_path / "run")[-1]
    state = torch.load(path, weights_only=False)
    DAMAGE[field](state)
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        toy_train(tmp_path / "run", resume=True, max_steps=6)
    message = str(info.value)
    assert f"field {field.strip()!r}" in message and str(path) in message and "\n" not in message, message


# ------------------------------------------------------------------------ disk full
class FullDisk(io.RawIOBase):
    """A file that takes 1,000 bytes and then fails as a full disk does."""

    def __init__(self, path):
        self.real, self.written = open(path, "wb"), 0

    def writable(self):
        return True

    def write(self, data):
        if self.written + len(data) > 1000:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written += len(data)
        return self.real.write(data)

    def fileno(self):
        return self.real.fileno()

    def close(self):
        self.real.close()
        super().close()


def test_disk_full_during_pretrains_checkpoint_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    from reliability_helpers import write_corpus

    corpus = write_corpus(tmp_path / "corpus.txt", documents=20)
    monkeypatch.setattr(run_state, "open", lambda path, mode: FullDisk(path), raising=False)
    code = main(["pretrain", "--files", str(corpus), "--out", str(tmp_path / "run"), "--steps", "2",
                 "--layers", "1", "--hidden", "16", "--heads", "2", "--vocab-size", "300", "--batch-size", "4",
                 "--no-progress", "--bf16", "off"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "no space left" in err and str(tmp_path / "run" / "checkpoints" / "step-0000002.pt") in err
    assert not list((tmp_path / "run" / "checkpoints").glob(".step-*")) and not checkpoint_paths(tmp_path / "run")
    assert not (tmp_path / "run" / "run.lock").exists()
