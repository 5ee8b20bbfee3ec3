"""Corrupted files: truncated or bit-flipped checkpoints, vocabularies and configs.

For every kind of file minirob reads, the test damages a good file many ways (truncations at fixed
fractions, single bit flips at seeded random places), loads it the way a user would, under a
timeout, and accepts only two outcomes:

* the library's documented error for that file (a :class:`MinirobError` subclass) naming the file;
* a complete result; for weights, exactly the original tensors (a flip in a byte nothing reads).

A truncated weight file is always an error, and so is a bit flip that changes what would be
loaded: zip-format ``.bin``/``.pt`` files are checked against the CRC-32 torch stores for every
record, and ``model.safetensors`` written by minirob against the sha256 in its metadata. A text file
(JSON, merges) has no checksum: a flip may leave it valid, which the test counts and allows.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from reliability_helpers import assert_clean_failure, run_cli, tiny_model_dir

from minirob import RobertaConfig, RobertaForMaskedLM, RobertaModel, Tokenizer
from minirob.datasets import fetch
from minirob.errors import CheckpointError, ConfigError, MinirobError, TokenizerError
from minirob.weights import minirob_to_hf

TRUNCATE_AT = (0.0, 0.001, 0.1, 0.5, 0.9, 0.999)  # fractions of the file kept
FLIPS = 24  # single-bit flips per file
SEED = 10


@contextmanager
def time_limit(seconds: int):
    """Fail instead of hanging (SIGALRM: pytest and its xdist workers run tests in the main thread)."""
    def expired(signum, frame):
        raise TimeoutError(f"load took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def damaged(data: bytes, flips: int = FLIPS, seed: int = SEED):
    """(description, bytes) for each truncation and each single-bit flip."""
    for fraction in TRUNCATE_AT:
        yield f"truncated to {fraction:.1%}", data[: int(len(data) * fraction)]
    rng = random.Random(seed)
    for _ in range(flips):
        position, bit = rng.randrange(len(data)), rng.randrange(8)
        copy = bytearray(data)
        copy[position] ^= 1 << bit
        yield f"bit {bit} of byte {position} flipped", bytes(copy)


def try_each(folder: Path, name: str, load, expected: type, tally: dict) -> list:
    """Write each damaged variant of ``folder/name`` in turn; load; classify the outcome."""
    target = folder / name
    original = target.read_bytes()
    results = []
    try:
        for how, data in damaged(original):
            target.write_bytes(data)
            try:
                with time_limit(60):
                    value = load(folder)
            except expected as error:
                assert isinstance(error, MinirobError)
                assert name in str(error) or str(folder) in str(error), f"{how}: {error}"
                tally["error"] = tally.get("error", 0) + 1
                results.append((how, None))
                continue
            except Exception as error:  # anything else is a bug: say which damage caused it
                raise AssertionError(f"{name}, {how}: {type(error).__name__}: {error}") from error
            assert not how.startswith("truncated") or name.endswith((".json", ".txt")), \
                f"{name} {how} loaded without an error"
            tally["loaded"] = tally.get("loaded", 0) + 1
            results.append((how, value))
    finally:
        target.write_bytes(original)
    return results


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("corrupted") / "model")


def state_of(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------ weights
def test_safetensors_written_by_minirob(model_dir, tmp_path):
    folder = Path(shutil.copytree(model_dir, tmp_path / "m"))
    reference = state_of(RobertaForMaskedLM.from_pretrained(folder))
    tally: dict = {}
    results = try_each(folder, "model.safetensors", RobertaForMaskedLM.from_pretrained, CheckpointError, tally)
    silent = [how for how, model in results if model is not None and not same_weights(state_of(model), reference)]
    assert not silent, f"changed weights loaded silently: {silent}"
    assert tally.get("error", 0) >= len(TRUNCATE_AT) + FLIPS - 2, tally  # nearly every byte matters


@pytest.mark.parametrize("layout", ["file", "directory"])
def test_pytorch_model_bin(model_dir, tmp_path, layout):
    folder = tmp_path / "bin"
    folder.mkdir()
    shutil.copy(model_dir / "config.json", folder)
    model = RobertaForMaskedLM.from_pretrained(model_dir)
    torch.save(minirob_to_hf(model), folder / "pytorch_model.bin")
    reference = state_of(model)
    load = (lambda f: RobertaForMaskedLM.from_pretrained(f / "pytorch_model.bin")) if layout == "file" \
        else RobertaForMaskedLM.from_pretrained
    tally: dict = {}
    results = try_each(folder, "pytorch_model.bin", load, CheckpointError, tally)
    silent = [how for how, m in results if m is not None and not same_weights(state_of(m), reference)]
    assert not silent, f"changed weights loaded silently: {silent}"
    assert tally["error"] >= len(TRUNCATE_AT) + FLIPS // 2, tally


@pytest.mark.parametrize("form", ["legacy", "zip"])
def test_fairseq_model_pt(tmp_path, form):
    """sapiens' real fairseq checkpoint (3.6 MB), damaged and loaded through minirob.

    The file as published is a legacy (torch < 1.6, not zip) pickle: it carries no checksum, so a
    flip inside a tensor's bytes cannot be noticed and is counted, not refused. Saved again in
    torch's zip format, every record has a CRC-32 and no changed weight may load.
    """
    from minirob.safe_pickle import safe_torch_load

    source = fetch("sapiens", progress=False)
    folder = tmp_path / "fairseq"
    folder.mkdir()
    shutil.copy(source / "dict.txt", folder / "dict.txt")
    if form == "legacy":
        shutil.copy(source / "checkpoint_vh.pt", folder / "model.pt")
    else:
        raw = safe_torch_load(source / "checkpoint_vh.pt")
        torch.save({"args": raw["args"], "model": raw["model"]}, folder / "model.pt")
    reference = state_of(RobertaForMaskedLM.from_pretrained(folder))
    tally: dict = {}
    results = try_each(folder, "model.pt", RobertaForMaskedLM.from_pretrained, CheckpointError, tally)
    changed = [how for how, m in results if m is not None and not same_weights(state_of(m), reference)]
    for how, model in results:  # what loads is a whole model of the right shapes
        if model is not None:
            assert {k: v.shape for k, v in state_of(model).items()} == {k: v.shape for k, v in reference.items()}
    if form == "zip":
        assert not changed, f"changed weights loaded silently: {changed}"
    print(f"fairseq {form}: {tally}, {len(changed)} loaded with changed weights (no checksum)")
    assert tally["error"] >= len(TRUNCATE_AT), tally


def test_convert_leaves_no_partial_output(model_dir, tmp_path, capsys):
    folder = Path(shutil.copytree(model_dir, tmp_path / "m"))
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(capsys, ["convert", folder, tmp_path / "out"])
    assert_clean_failure(code, err, "model.safetensors")
    assert not (tmp_path / "out" / "model.safetensors").exists()
    assert not (tmp_path / "out" / "config.json").exists()


# ------------------------------------------------------------------------ two weight files
@pytest.mark.parametrize("change", ["one value", "an extra tensor", "half precision"])
def test_two_weight_files_that_disagree(model_dir, tmp_path, change):
    folder = Path(shutil.copytree(model_dir, tmp_path / "two"))
    state = minirob_to_hf(RobertaForMaskedLM.from_pretrained(model_dir))
    torch.save(state, folder / "pytorch_model.bin")
    RobertaModel.from_pretrained(folder)  # agreeing copies load (the control)
    if change == "one value":
        state["lm_head.bias"] = state["lm_head.bias"].clone()
        state["lm_head.bias"][3] += 1e-3
    elif change == "an extra tensor":
        state["roberta.pooler.dense.bias"] = torch.zeros(16)
    else:
        state = {k: v.half() for k, v in state.items()}
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="model.safetensors and pytorch_model.bin"):
        RobertaForMaskedLM.from_pretrained(folder)


# ------------------------------------------------------------------------ text files
def test_config_json(model_dir, tmp_path):
    folder = Path(shutil.copytree(model_dir, tmp_path / "m"))
    original = RobertaConfig.load(folder / "config.json")
    tally: dict = {}
    # A flip may leave valid JSON with another value: then the config must still be a valid one
    # (its checks ran) and loading the weights either fits or fails as a CheckpointError.
    results = try_each(folder, "config.json", lambda f: RobertaConfig.load(f / "config.json"), ConfigError, tally)
    for how, config in results:
        if config is not None and config != original:
            try:
                RobertaForMaskedLM.from_pretrained(folder, config=config)
            except CheckpointError:
                pass
    assert tally["error"] >= len(TRUNCATE_AT) - 1, tally  # a cut-off JSON object does not parse


@pytest.mark.parametrize("name", ["vocab.json", "merges.txt", "tokenizer.json"])
def test_tokenizer_files(model_dir, tmp_path, name):
    folder = tmp_path / "tok"
    folder.mkdir()
    files = ["tokenizer.json"] if name == "tokenizer.json" else ["vocab.json", "merges.txt"]
    for file in files:
        shutil.copy(model_dir / file, folder / file)
    tally: dict = {}
    results = try_each(folder, name, Tokenizer.from_pretrained, TokenizerError, tally)
    for how, tokenizer in results:  # whatever loaded must work on text
        if tokenizer is not None:
            tokenizer.encode("The cat sat on the mat.")
    assert tally.get("error", 0) >= 3, tally
    print(name, tally)


def test_fill_mask_on_a_corrupted_model_directory_exits_cleanly(model_dir, tmp_path, capsys):
    folder = Path(shutil.copytree(model_dir, tmp_path / "m"))
    (folder / "vocab.json").write_text('{"<s>": 0, "<pad>": 1,')
    (folder / "tokenizer.json").unlink()
    code, _, err = run_cli(capsys, ["fill-mask", folder, "The <mask> sat."])
    assert_clean_failure(code, err, "vocab.json")
    config = json.loads((folder / "config.json").read_text())
    config["num_hidden_layers"] = 3  # more layers than the weights have
    (folder / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli(capsys, ["fill-mask", folder, "The <mask> sat."])
    assert_clean_failure(code, err, "encoder.layers.1")


@pytest.mark.parametrize("record", ['{"task": "sentiment", "labels": ["neg", ', "{}", '{"task": "ner", "labels": 3}'],
                         ids=["truncated", "empty object", "labels not a list"])
def test_fine_tuned_run_record(model_dir, tmp_path, capsys, record):
    from minirob.finetune import RECIPE_FILE
    from minirob.predict import Predictor

    folder = Path(shutil.copytree(model_dir, tmp_path / "run"))
    (folder / RECIPE_FILE).write_text(record)
    with pytest.raises(CheckpointError, match=RECIPE_FILE):
        Predictor.load(folder)
    code, _, err = run_cli(capsys, ["predict", folder, "a fine film"])
    assert_clean_failure(code, err, RECIPE_FILE)
