"""Untrusted checkpoints: a pickle that would run code is refused by every loading path.

A ``.bin`` / ``.pt`` file is a pickle, and unpickling can call any importable function. Each test
below builds such a file (its payload would create a marker file), hands it to one of minirob's
loading paths -- the Python API and the ``minirob`` commands -- and checks that the load is refused
with :class:`UnsafeCheckpointError` naming what the pickle asked for, and that the marker never
appears. The control test shows the same bytes DO run their payload under plain ``pickle.loads``,
so the marker check can fail.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import shutil
from pathlib import Path

import numpy
import pytest
import torch
from reliability_helpers import (
    assert_clean_failure,
    evil_state,
    marker,  # noqa: F401  (fixture)
    payloads,
    run_cli,
    run_cli_subprocess,
    tiny_model_dir,
    write_corpus,
    write_evil_legacy,
    write_evil_torch,
)

from minirob import RobertaForMaskedLM, RobertaForSequenceClassification, RobertaModel
from minirob.errors import CheckpointError, UnsafeCheckpointError
from minirob.fairseq import load_fairseq
from minirob.safe_pickle import Opaque, RestrictedUnpickler, safe_torch_load
from minirob.weights import read_checkpoint, read_state_dict

REFUSED = r"(GLOBAL|import) \S*(system|eval|exec|call)\b"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("untrusted") / "model")


def tampered_dir(model_dir, tmp_path, marker, keep_safetensors: bool):
    """A model directory where someone dropped a malicious pytorch_model.bin."""
    directory = tmp_path / "tampered"
    shutil.copytree(model_dir, directory)
    if not keep_safetensors:
        (directory / "model.safetensors").unlink()
    write_evil_torch(directory / "pytorch_model.bin", marker)
    return directory


def test_control_the_payload_runs_under_plain_pickle(tmp_path):
    """Without minirob's loaders the very same bytes run their payload: the marker test can fail."""
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(evil_state(control)))
    assert control.exists()


# ------------------------------------------------------------------------ Python API paths
@pytest.mark.parametrize("how", sorted(payloads(Path("x"))))
def test_bin_file_with_any_payload_is_refused(tmp_path, marker, how):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta", "vocab_size": 4}))
    path = write_evil_torch(tmp_path / "pytorch_model.bin", marker, how)
    with pytest.raises(UnsafeCheckpointError, match=REFUSED):
        read_state_dict(path)
    with pytest.raises(UnsafeCheckpointError, match=str(path)):
        RobertaModel.from_pretrained(path)


@pytest.mark.parametrize("keep_safetensors", [False, True], ids=["bin-only", "next-to-safetensors"])
def test_hf_directory_with_a_malicious_bin(model_dir, tmp_path, marker, keep_safetensors):
    directory = tampered_dir(model_dir, tmp_path, marker, keep_safetensors)
    for cls in (RobertaModel, RobertaForMaskedLM, RobertaForSequenceClassification):
        with pytest.raises(UnsafeCheckpointError, match="pytorch_model.bin"):
            cls.from_pretrained(directory)


def fairseq_like(state):
    """The payload placed where fairseq keeps its training arguments."""
    return {"model": {"encoder.sentence_encoder.embed_tokens.weight": torch.zeros(4, 2)},
            "args": argparse.Namespace(arch="roberta_base", payload=state)}


@pytest.mark.parametrize("writer", ["zip", "legacy"])
def test_fairseq_model_pt_is_refused_by_every_entry_point(tmp_path, marker, writer):
    folder = tmp_path / "fairseq"
    folder.mkdir()
    path = folder / "model.pt"
    if writer == "zip":
        write_evil_torch(path, marker, wrap=fairseq_like)
    else:
        write_evil_legacy(path, marker)
    for load in (safe_torch_load, load_fairseq, read_checkpoint, RobertaForMaskedLM.from_pretrained):
        with pytest.raises(UnsafeCheckpointError, match=REFUSED):
            load(path)
    with pytest.raises(UnsafeCheckpointError, match="model.pt"):
        RobertaModel.from_pretrained(folder)  # the directory form


def test_resume_checkpoint_is_refused(tmp_path, marker):
    """``--resume`` reads the newest checkpoints/step-*.pt: a planted one must not run."""
    from torch import nn

    from minirob.train import ShuffledBatches, TrainConfig, train

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    write_evil_torch(out / "checkpoints" / "step-0000005.pt", marker, wrap=lambda s: {"model": s, "step": 5})
    data = [(torch.randn(3), torch.tensor(0)) for _ in range(8)]
    batches = ShuffledBatches(data, 4, lambda b: (torch.stack([x for x, _ in b]), torch.stack([y for _, y in b])))
    config = TrainConfig(out_dir=str(out), max_steps=10, progress=False, plot=False, bf16="off")
    with pytest.raises(UnsafeCheckpointError, match="step-0000005.pt"):
        train(nn.Linear(3, 2), lambda m, b: (nn.functional.cross_entropy(m(b[0]), b[1]), {}), batches,
              config, resume=True)


def test_fine_tuned_run_directory_is_refused(model_dir, tmp_path, marker):
    from minirob.predict import Predictor

    from minirob.finetune import RECIPE_FILE

    directory = tampered_dir(model_dir, tmp_path, marker, keep_safetensors=False)

    (directory / RECIPE_FILE).write_text(json.dumps({"task": "sentiment", "labels": ["a", "b"],
                                                     "max_length": 32}))
    with pytest.raises(UnsafeCheckpointError, match="pytorch_model.bin"):
        Predictor.load(directory)


# ------------------------------------------------------------------------ the command line
def test_commands_refuse_and_exit_cleanly(model_dir, tmp_path, marker, capsys):
    directory = tampered_dir(model_dir, tmp_path, marker, keep_safetensors=False)
    from minirob.finetune import RECIPE_FILE

    tuned = tmp_path / "tuned"  # a fine-tuned run folder (what predict reads; fill-mask refuses it)
    shutil.copytree(directory, tuned)
    (tuned / RECIPE_FILE).write_text(json.dumps({"task": "sentiment", "labels": ["a", "b"],
                                                 "max_length": 32}))
    text = write_corpus(tmp_path / "text.txt", documents=4)
    table = tmp_path / "train.csv"
    table.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(10)))
    commands = {
        "fill-mask": ["fill-mask", directory, "The <mask> sat."],
        "predict": ["predict", tuned, "a fine film"],
        "evaluate": ["evaluate", directory, "--files", text],
        "convert": ["convert", directory / "pytorch_model.bin", tmp_path / "converted"],
        "finetune": ["finetune", "--task", "classify", "--from", directory, "--train", table,
                     "--out", tmp_path / "ft", "--epochs", "1"],
    }
    for name, argv in commands.items():
        code, _, err = run_cli(capsys, argv)
        assert_clean_failure(code, err, "pytorch_model.bin", "GLOBAL posix.system")
    assert not (tmp_path / "converted" / "model.safetensors").exists()


def test_pretrain_resume_command_refuses_a_planted_checkpoint(tmp_path, marker, capsys):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    write_evil_torch(out / "checkpoints" / "step-0000002.pt", marker, wrap=lambda s: {"model": s})
    corpus = write_corpus(tmp_path / "corpus.txt", documents=12)
    code, _, err = run_cli(capsys, [
        "pretrain", "--corpus", "files", "--files", corpus, "--out", out, "--resume", "--steps", "4",
        "--layers", "1", "--hidden", "16", "--heads", "2", "--vocab-size", "300", "--max-length", "32",
        "--batch-size", "4", "--bf16", "off", "--no-progress"])
    assert_clean_failure(code, err, "step-0000002.pt", "posix.system")


def test_fill_mask_in_a_fresh_process(model_dir, tmp_path, marker):
    """The installed entry point, end to end, in its own interpreter."""
    directory = tampered_dir(model_dir, tmp_path, marker, keep_safetensors=False)
    result = run_cli_subprocess(["fill-mask", directory, "The <mask> sat."])
    assert_clean_failure(result.returncode, result.stderr, "pytorch_model.bin", "posix.system")


# ------------------------------------------------------------------------ the allow-list itself
def restricted_loads(data: bytes):
    return RestrictedUnpickler(io.BytesIO(data)).load()


@pytest.mark.parametrize("module, name", [
    ("posix", "system"), ("os", "system"), ("builtins", "eval"), ("builtins", "exec"),
    ("builtins", "getattr"), ("builtins", "__import__"), ("builtins", "open"),
    ("subprocess", "Popen"), ("torch", "load"), ("torch.serialization", "load"),
    ("numpy", "load"), ("pickle", "loads"), ("runpy", "run_path"), ("shutil", "rmtree"),
])
def test_globals_outside_the_allow_list_are_refused_before_import(module, name):
    # protocol-0 GLOBAL opcode naming module.name, then STOP: what any pickle does to reach code.
    data = f"c{module}\n{name}\n.".encode()
    with pytest.raises(UnsafeCheckpointError, match=f"{module}.{name}"):
        restricted_loads(data)


def test_allow_listed_types_round_trip(tmp_path):
    value = {
        "weights": torch.arange(6.0).reshape(2, 3),
        "ordered": __import__("collections").OrderedDict(a=1),
        "args": argparse.Namespace(lr=0.1, arch="roberta_base"),
        "set": {1, 2}, "bytes": b"\x00\xff", "dtype": torch.float16,
        "numpy": numpy.arange(3, dtype=numpy.float32), "scalar": numpy.float64(2.5),
    }
    torch.save(value, tmp_path / "fine.pt")
    loaded = safe_torch_load(tmp_path / "fine.pt")
    assert torch.equal(loaded["weights"], value["weights"])
    assert loaded["args"] == value["args"] and loaded["set"] == {1, 2} and loaded["bytes"] == b"\x00\xff"
    assert loaded["dtype"] is torch.float16 and loaded["scalar"] == 2.5
    assert numpy.array_equal(loaded["numpy"], value["numpy"])


def test_fairseq_classes_become_inert_records_without_import():
    """A fairseq meter pickles as GLOBAL fairseq.meters.AverageMeter: stood in for, never imported."""
    import sys

    data = b"cfairseq.meters\nAverageMeter\n)\x81}(Vavg\nF1.5\nub."  # NEWOBJ + BUILD with state
    value = restricted_loads(data)
    assert isinstance(value, Opaque) and value.qualified_name == "fairseq.meters.AverageMeter"
    assert value.state == {"avg": 1.5}
    assert "fairseq" not in sys.modules


def test_numpy_object_arrays_are_refused(tmp_path, marker):
    path = tmp_path / "object.pt"
    torch.save({"x": numpy.array([None, payloads(marker)["os.system"]], dtype=object)}, path)
    with pytest.raises(UnsafeCheckpointError, match=f"{REFUSED}|dtype object"):
        safe_torch_load(path)


def test_codecs_other_than_latin1_are_refused():
    data = b"c_codecs\nencode\n(Vx\nVrot13\ntR."
    with pytest.raises(UnsafeCheckpointError, match="rot13"):
        restricted_loads(data)
