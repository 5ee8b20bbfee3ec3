"""The shared training loop: learning, exact resume, accumulation, schedule, checkpoints, failures.

References: a hand-written AdamW loop over one big batch (accumulation must equal it), the
uninterrupted run (a resumed run must equal it bit for bit), the schedule's formula evaluated by
hand.
"""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minirob.errors import ConfigError, TrainingError
from minirob.train import (
    ShuffledBatches,
    TrainConfig,
    checkpoint_paths,
    evaluate_batches,
    lr_factor,
    read_metrics,
    train,
)


def toy_data(n=96, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=generator)
    y = ((x[:, 0] + x[:, 1]) > 0).long()
    return list(zip(x, y))


def collate(examples):
    return {"x": torch.stack([e[0] for e in examples]), "y": torch.stack([e[1] for e in examples])}


def toy_model(dropout=0.2, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Dropout(dropout), nn.GELU(), nn.Linear(16, 2))


def loss_fn(model, batch):
    logits = model(batch["x"])
    correct = (logits.argmax(-1) == batch["y"]).sum()
    return F.cross_entropy(logits, batch["y"]), {"count": len(batch["y"]), "correct": correct}


def config(tmp_path, **overrides):
    values = dict(out_dir=str(tmp_path / "run"), lr=0.02, max_steps=30, warmup=0.1, progress=False,
                  plot=False, bf16="off", log_every=1, keep_checkpoints=2)
    values.update(overrides)
    return TrainConfig(**values)


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_learns_and_writes_the_run_directory(tmp_path):
    data = toy_data()
    model = toy_model()
    dev = [collate(data)]
    before = evaluate_batches(model, loss_fn, dev)
    result = train(model, loss_fn, ShuffledBatches(data, 16, collate), config(tmp_path, max_steps=60, plot=True,
                   eval_every=20), evaluate=lambda m: evaluate_batches(m, loss_fn, dev))
    assert result.step == 60 and result.metrics["accuracy"] > 0.9 > before["accuracy"]
    assert result.metrics["loss"] < before["loss"] - 0.3
    run = tmp_path / "run"
    info = json.loads((run / "run.json").read_text())
    assert info["seed"] == 0 and info["versions"]["torch"] == torch.__version__
    assert info["train_config"]["betas"] == [0.9, 0.98] and info["train_config"]["eps"] == 1e-6
    records = read_metrics(run)
    assert [r["step"] for r in records if r["split"] == "eval"] == [20, 40, 60]
    assert (run / "curves.png").stat().st_size > 10_000
    # keep_checkpoints=2: only the newest two remain, no temporary files are left behind
    assert [p.name for p in checkpoint_paths(run)] == ["step-0000060.pt"] or len(checkpoint_paths(run)) <= 2
    assert not list((run / "checkpoints").glob(".*tmp*"))


def test_evaluation_hook_can_stop_the_run(tmp_path):
    # The hook returns "stop": True at its second call (step 20): no step after it is taken,
    # there is no extra final evaluation, and the result says why the run ended.
    calls = []

    def evaluate(m):
        calls.append(1)
        return {"calls": len(calls), "stop": len(calls) == 2}

    result = train(toy_model(), loss_fn, ShuffledBatches(toy_data(), 16, collate),
                   config(tmp_path, max_steps=60, eval_every=10), evaluate=evaluate)
    assert (result.step, result.stopped_by, len(calls)) == (20, "evaluate", 2)
    evals = [r["step"] for r in read_metrics(tmp_path / "run") if r["split"] == "eval"]
    assert evals == [10, 20]


def test_schedule_by_hand():
    # linear warm-up over the first 10%, then linear decay to 0
    assert lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1) == pytest.approx(0.5)
    assert lr_factor(1.0, 0.1) == 0.0
    assert lr_factor(0.3, 0.0) == pytest.approx(0.7)


def test_learning_rates_logged_follow_the_schedule(tmp_path):
    train(toy_model(), loss_fn, ShuffledBatches(toy_data(), 16, collate),
          config(tmp_path, max_steps=20, warmup=4, lr=0.01))
    lrs = [r["lr"] for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    # step k (1-based) trains at progress k / 20; warm-up is 4 steps = 0.2 of the budget
    expected = [0.01 * lr_factor(k / 20, 0.2) for k in range(1, 21)]
    assert lrs == pytest.approx(expected)


def test_accumulation_equals_one_big_batch_with_unequal_counts(tmp_path):
    """Two micro-batches of 16 and 8 items must give the mean over all 24, not a mean of means."""
    data = toy_data(n=24)

    class Halves:  # first 16 examples, then the last 8, forever
        def __init__(self):
            self.i = 0

        def __next__(self):
            self.i += 1
            return collate(data[:16]) if self.i % 2 else collate(data[16:])

        def state_dict(self):
            return {"i": self.i}

        def load_state_dict(self, s):
            self.i = s["i"]

    model = toy_model(dropout=0.0)
    train(model, loss_fn, Halves(), config(tmp_path, max_steps=5, accumulation=2, warmup=0.0, grad_clip=None))

    # reference: plain AdamW on the full batch of 24, same schedule, written out here
    ref = toy_model(dropout=0.0)
    decay = [p for p in ref.parameters() if p.dim() >= 2]
    no_decay = [p for p in ref.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=0.02, betas=(0.9, 0.98), eps=1e-6)
    for k in range(5):
        for group in opt.param_groups:
            group["lr"] = 0.02 * (1 - (k + 1) / 5)
        loss, _ = loss_fn(ref, collate(data))
        loss.backward()
        opt.step()
        opt.zero_grad()
    torch.testing.assert_close(params(model), params(ref), rtol=1e-5, atol=1e-6)


def test_resume_continues_exactly(tmp_path):
    """20 steps straight == 8 steps, a new process-like start with --resume, 12 more (dropout on)."""
    data = toy_data()
    straight = toy_model()
    train(straight, loss_fn, ShuffledBatches(data, 16, collate), config(tmp_path / "a", max_steps=20))

    first = toy_model()
    with pytest.raises(KeyboardInterrupt):
        calls = {"n": 0}

        def interrupting(model, batch):
            calls["n"] += 1
            if calls["n"] == 9:  # inside step 9: Ctrl-C
                raise KeyboardInterrupt
            return loss_fn(model, batch)

        train(first, interrupting, ShuffledBatches(data, 16, collate), config(tmp_path / "b", max_steps=20))
    assert [p.name for p in checkpoint_paths(tmp_path / "b" / "run")][-1] == "step-0000008.pt"
    torch.manual_seed(999)  # the resumed run must not depend on the state of the new process
    resumed = toy_model(seed=123)
    train(resumed, loss_fn, ShuffledBatches(data, 16, collate), config(tmp_path / "b", max_steps=20), resume=True)
    assert torch.equal(params(resumed), params(straight))
    losses = lambda d: [r["loss"] for r in read_metrics(d / "run") if r["split"] == "train"]  # noqa: E731
    assert losses(tmp_path / "b") == losses(tmp_path / "a")


def test_interrupt_says_how_to_resume(tmp_path, capsys):
    def interrupting(model, batch):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(toy_model(), interrupting, ShuffledBatches(toy_data(), 16, collate), config(tmp_path))
    assert "--resume" in capsys.readouterr().err
    assert checkpoint_paths(tmp_path / "run")


def test_resume_from_another_configuration_is_refused(tmp_path):
    train(toy_model(), loss_fn, ShuffledBatches(toy_data(), 16, collate), config(tmp_path, max_steps=3))
    with pytest.raises(TrainingError, match="another configuration.*lr"):
        train(toy_model(), loss_fn, ShuffledBatches(toy_data(), 16, collate), config(tmp_path, lr=0.5), resume=True)
    wider = nn.Sequential(nn.Linear(6, 32), nn.Dropout(0.2), nn.GELU(), nn.Linear(32, 2))
    with pytest.raises(TrainingError, match="shape"):
        train(wider, loss_fn, ShuffledBatches(toy_data(), 16, collate), config(tmp_path), resume=True)
    with pytest.raises(TrainingError, match="already holds checkpoints"):
        train(toy_model(), loss_fn, ShuffledBatches(toy_data(), 16, collate), config(tmp_path))
    with pytest.raises(TrainingError, match="no checkpoint"):
        train(toy_model(), loss_fn, ShuffledBatches(toy_data(), 16, collate), config(tmp_path / "new"), resume=True)


def test_nan_loss_stops_and_keeps_the_last_good_state(tmp_path):
    calls = {"n": 0}

    def exploding(model, batch):
        calls["n"] += 1
        loss, metrics = loss_fn(model, batch)
        return (loss * float("nan") if calls["n"] == 7 else loss), metrics

    model = toy_model()
    with pytest.raises(TrainingError, match="at step 7"):
        train(model, exploding, ShuffledBatches(toy_data(), 16, collate), config(tmp_path, checkpoint_every=5))
    saved = torch.load(checkpoint_paths(tmp_path / "run")[-1], weights_only=False)
    assert saved["step"] == 6
    assert all(torch.isfinite(v).all() for v in saved["model"].values())
    assert torch.equal(params(model), torch.cat([v.flatten() for v in saved["model"].values()]))


def test_bad_configurations():
    with pytest.raises(ConfigError, match="budget"):
        TrainConfig()
    with pytest.raises(ConfigError, match="bf16"):
        TrainConfig(max_steps=1, bf16="maybe")
    with pytest.raises(ConfigError, match="fewer than one batch"):
        ShuffledBatches(toy_data(n=4), 16, collate)


def _epoch_of(batches: ShuffledBatches) -> list[list[int]]:
    """One epoch of a ShuffledBatches over the examples 0..N-1, collated as plain lists."""
    return [next(batches) for _ in range(batches.batches_per_epoch())]


@pytest.mark.parametrize("drop_last", [False, True])
def test_length_grouping_keeps_every_example_once_and_cuts_padding(drop_last):
    # 203 examples whose lengths are random in 1..64: with batches of 8, padding a batch to its
    # longest member wastes about half the tokens when batches are random; grouping (windows of
    # 5 batches sorted by length: each batch then spans about a fifth of the range of lengths,
    # padding ~1.2x) must waste far less, and still serve each example once per epoch.
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 65, (203,), generator=generator).tolist()
    examples = list(range(203))

    def padded_over_real(epoch):
        padded = sum(max(lengths[i] for i in b) * len(b) for b in epoch)
        return padded / sum(lengths[i] for b in epoch for i in b)

    plain = ShuffledBatches(examples, 8, list, seed=3, drop_last=drop_last)
    grouped = ShuffledBatches(examples, 8, list, seed=3, drop_last=drop_last, lengths=lengths,
                              group_size=5)
    first, second = _epoch_of(grouped), _epoch_of(grouped)
    for epoch in (first, second):
        served = sorted(i for b in epoch for i in b)
        assert len(served) == len(set(served))
        assert len(served) == (200 if drop_last else 203)
        assert all(len(b) == 8 for b in epoch) if drop_last else sum(len(b) < 8 for b in epoch) == 1
    assert first != second  # reshuffled each epoch
    assert padded_over_real(_epoch_of(plain)) > 1.4
    assert padded_over_real(first) < 1.25


def test_length_grouping_resumes_where_it_stopped():
    lengths = [(7 * i) % 23 + 1 for i in range(100)]
    straight = ShuffledBatches(list(range(100)), 6, list, seed=1, lengths=lengths)
    expected = [next(straight) for _ in range(40)]  # crosses two epoch boundaries
    first = ShuffledBatches(list(range(100)), 6, list, seed=1, lengths=lengths)
    taken = [next(first) for _ in range(21)]
    resumed = ShuffledBatches(list(range(100)), 6, list, seed=1, lengths=lengths)
    resumed.load_state_dict(first.state_dict())
    assert taken + [next(resumed) for _ in range(19)] == expected


def test_length_grouping_needs_one_length_per_example():
    with pytest.raises(ConfigError, match="3 lengths for 4 examples"):
        ShuffledBatches([1, 2, 3, 4], 2, list, lengths=[1, 2, 3])


def test_compile_option_compiles_the_model_once_before_training(tmp_path, monkeypatch):
    """--compile reaches train() through TrainConfig.compile (the compiler itself: test_compiled.py)."""
    import minirob.train
    from minirob.cli import build_parser
    from minirob.commands.pretrain import recipe_from_args

    compiled = []
    monkeypatch.setattr(minirob.train, "compile_model", lambda model: compiled.append(model) or model)
    model = toy_model()
    train(model, loss_fn, ShuffledBatches(toy_data(), 16, collate, seed=0), config(tmp_path, max_steps=2, compile=True))
    assert compiled == [model]
    train(toy_model(), loss_fn, ShuffledBatches(toy_data(), 16, collate, seed=0),
          config(tmp_path / "eager", max_steps=2))
    assert len(compiled) == 1  # off by default

    for command, flag in (("pretrain", True), ("finetune", True)):
        argv = [command, "--compile"] + (["--task", "ner", "--from", "minilm", "--out", "o"] if command == "finetune" else [])
        args = build_parser().parse_args(argv)
        assert args.compile is flag
    assert recipe_from_args(build_parser().parse_args(["pretrain", "--compile"])).train.compile is True
    assert recipe_from_args(build_parser().parse_args(["pretrain"])).train.compile is False


def test_device_option_reaches_the_loop_and_is_checked_before_any_work(capsys):
    """--device on the two training commands: into TrainConfig.device, refused by argparse when
    torch does not know it or this machine lacks it (before a corpus is fetched or a model read)."""
    from minirob.cli import build_parser, main
    from minirob.commands.pretrain import recipe_from_args

    args = build_parser().parse_args(["pretrain", "--device", "cpu"])
    assert recipe_from_args(args).train.device == "cpu"
    assert recipe_from_args(build_parser().parse_args(["pretrain"])).train.device == "auto"
    finetune = ["finetune", "--task", "ner", "--from", "minilm", "--out", "o"]
    assert build_parser().parse_args(finetune + ["--device", "cpu"]).device == "cpu"
    bad = ["banana"] + ([] if torch.cuda.is_available() else ["cuda"])
    for command in (["pretrain"], finetune):
        for device in bad:
            with pytest.raises(SystemExit) as exit_info:
                main(command + ["--device", device])
            assert exit_info.value.code == 2
            err = capsys.readouterr().err
            assert "--device" in err and device in err and "Traceback" not in err, err


USE_COMMANDS = [["predict", "run", "text"], ["evaluate", "run", "--data", "d.csv"],
                ["embed", "model", "text"], ["similarity", "a", "b"], ["fill-mask", "m", "a <mask>"]]


def test_device_and_threads_are_declared_once_for_every_command_that_runs_a_model(capsys, monkeypatch):
    """predict, evaluate, embed, similarity and fill-mask check --device like the training
    commands do; every command that runs a model takes --threads, which cli.main applies."""
    from minirob import cli
    from minirob.cli import build_parser, main

    finetune = ["finetune", "--task", "ner", "--from", "minilm", "--out", "o"]
    for command in USE_COMMANDS + [["pretrain"], finetune]:
        assert build_parser().parse_args(command + ["--threads", "3"]).threads == 3
        with pytest.raises(SystemExit) as exit_info:
            main(command + ["--threads", "0"])
        assert exit_info.value.code == 2 and "--threads" in capsys.readouterr().err
    for command in USE_COMMANDS:
        assert build_parser().parse_args(command + ["--device", "cpu"]).device == "cpu"
        with pytest.raises(SystemExit) as exit_info:
            main(command + ["--device", "banana"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "--device" in err and "banana" in err and "Traceback" not in err, err
    applied = []
    monkeypatch.setattr(cli.torch, "set_num_threads", applied.append)
    monkeypatch.setattr(cli, "build_parser", lambda: _parser_with_a_stub_command())
    assert main(["stub", "--threads", "3"]) == 0
    assert applied == [3]


def _parser_with_a_stub_command():
    import argparse

    from minirob.commands.options import add_threads

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    stub = sub.add_parser("stub")
    add_threads(stub)
    stub.set_defaults(func=lambda args: 0)
    return parser
