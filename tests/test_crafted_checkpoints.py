"""Crafted checkpoint files (issue 19): each gets one line naming the culprit, never a traceback,
a hang, or a silently wrong model.

Every file here is written by the test: config.json files with absurd sizes or wrong types,
fairseq checkpoints (sapiens' real one, from ``minirob.datasets.fetch``) with damaged arguments or
missing tensors, an HF checkpoint with an untied decoder, tensor names carrying terminal escapes,
and saves that meet a full disk (the writer is replaced by one raising ENOSPC, as the OS would).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time

import pytest
import safetensors
import torch
from reliability_helpers import run_cli
from safetensors.torch import save_file

import minirob
import minirob.config
import minirob.weights
from minirob.cli import main
from minirob.datasets import fetch
from minirob.errors import CheckpointError, ConfigError, MinirobError, WriteError
from minirob.names import minirob_to_hf
from minirob.safe_pickle import safe_torch_load

CONFIG = minirob.RobertaConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=32,
                               max_position_embeddings=20)
ESCAPES = "evil\n\x1b[31mINFO all good\x1b[0m.weight"  # a name that would fake a log line


def one_line(error: BaseException, *needles: str) -> str:
    """The message is one line, has no raw control characters, and names every needle."""
    text = str(error)
    assert isinstance(error, MinirobError), type(error)
    assert "\n" not in text and "\x1b" not in text, text
    for needle in needles:
        assert needle in text, (needle, text)
    return text


def model_dir(directory, state=None, config=CONFIG, **config_changes):
    """config.json (with ``config_changes`` written over it) + model.safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    state = state if state is not None else minirob_to_hf(minirob.RobertaForMaskedLM(config))
    values = {**config.to_hf_dict(), **config_changes}
    (directory / "config.json").write_text(json.dumps(values))
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"))
    return directory


# ------------------------------------------------------------------------------- config.json
BAD_CONFIGS = [  # (field, value written to config.json, text the error must contain)
    ("hidden_size", 10**9, "config.hidden_size=1000000000 is above"),
    ("vocab_size", 10**9, "config.vocab_size=1000000000 is above"),
    ("max_position_embeddings", 10**9, "config.max_position_embeddings=1000000000 is above"),
    ("intermediate_size", 10**9, "config.intermediate_size=1000000000 is above"),
    ("num_hidden_layers", 10**6, "config.num_hidden_layers=1000000 is above"),  # hung before
    ("layer_norm_eps", "1e-5", "config.layer_norm_eps must be a finite number, got '1e-5'"),
    ("layer_norm_eps", -1, "config.layer_norm_eps must be above 0, got -1"),
    ("layer_norm_eps", float("nan"), "config.layer_norm_eps must be a finite number, got nan"),
    ("pad_token_id", 1.5, "config.pad_token_id=1.5 is not a token id"),
    ("pad_token_id", True, "config.pad_token_id=True is not a token id"),
    ("hidden_dropout_prob", [0.1], "config.hidden_dropout_prob must be a finite number"),
    ("bos_token_id", "0", "config.bos_token_id must be an integer"),
    ("id2label", {"0": ["nested"]}, "id2label names must be strings"),
]


@pytest.mark.parametrize("field, value, needle", BAD_CONFIGS,
                         ids=[f"{f}={v!r:.20}" for f, v, _ in BAD_CONFIGS])
def test_config_field_is_named_with_value_and_file(tmp_path, field, value, needle):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**CONFIG.to_hf_dict(), field: value}))
    start = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        minirob.RobertaConfig.load(path)
    one_line(caught.value, needle, str(path))
    assert time.perf_counter() - start < 5


def test_config_nested_too_deeply(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "roberta", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ConfigError) as caught:
        minirob.RobertaConfig.load(path)
    one_line(caught.value, str(path), "nested too deeply")


def test_config_bigger_than_memory_is_refused_before_building(tmp_path):
    """Within the stated limits but beyond this machine: 65,536 wide, 10M words, 1,000 layers."""
    directory = model_dir(tmp_path / "huge", hidden_size=65_536, num_attention_heads=16,
                          vocab_size=10_000_000, num_hidden_layers=1_000)
    with pytest.raises(ConfigError) as caught:
        minirob.RobertaForMaskedLM.from_pretrained(directory)
    one_line(caught.value, "huge", "GiB", "hidden_size=65536")


def test_memory_estimate_is_checked_when_a_model_is_built(monkeypatch):
    monkeypatch.setattr(minirob.config, "available_memory", lambda: 100 * 2**20)
    config = minirob.RobertaConfig.base()  # a config alone is fine: nothing is allocated
    with pytest.raises(ConfigError) as caught:
        minirob.RobertaModel(config)
    one_line(caught.value, "0.5 GiB", "0.1 GiB")
    assert abs(config.parameter_count() - 125_289_563) < 1_000  # roberta-base + pooler + heads


def test_saved_config_never_says_untied(tmp_path):
    directory = model_dir(tmp_path / "m", tie_word_embeddings=True)
    model = minirob.RobertaForMaskedLM.from_pretrained(directory)
    model.config.extra["tie_word_embeddings"] = False
    model.save_pretrained(tmp_path / "out")
    assert "tie_word_embeddings" not in json.loads((tmp_path / "out" / "config.json").read_text())


# ------------------------------------------------------------------------------ untied decoder
def untied_state():
    torch.manual_seed(0)
    state = minirob_to_hf(minirob.RobertaForMaskedLM(CONFIG))
    state["lm_head.decoder.weight"] = torch.randn(40, 16)  # a matrix of its own
    return state


def test_untied_decoder_is_refused(tmp_path, capsys):
    directory = model_dir(tmp_path / "untied", untied_state(), tie_word_embeddings=False)
    with pytest.raises(CheckpointError) as caught:
        minirob.RobertaForMaskedLM.from_pretrained(directory)
    one_line(caught.value, "lm_head.decoder.weight", "tie_word_embeddings=false", "untied")
    code, _, err = run_cli(capsys, ["convert", directory, tmp_path / "out"])
    assert code == 1 and "lm_head.decoder.weight" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_tied_checkpoints_still_load(tmp_path):
    """The same file under tie_word_embeddings=true: transformers ignores the decoder copy too."""
    minirob.RobertaForMaskedLM.from_pretrained(model_dir(tmp_path / "tied", untied_state()))
    torch.manual_seed(0)
    state = minirob_to_hf(minirob.RobertaForMaskedLM(CONFIG))
    state["lm_head.decoder.weight"] = state["roberta.embeddings.word_embeddings.weight"].clone()
    minirob.RobertaForMaskedLM.from_pretrained(
        model_dir(tmp_path / "same", state, tie_word_embeddings=False))  # untied but equal: fine


# ------------------------------------------------------------------- names with escapes
def test_escape_sequences_in_tensor_names_are_not_echoed_raw(tmp_path, capsys):
    directory = model_dir(tmp_path / "other", {ESCAPES: torch.zeros(2, 2)})
    with pytest.raises(CheckpointError) as caught:
        minirob.RobertaModel.from_pretrained(directory)
    one_line(caught.value, "another architecture", r"\x1b[31m")

    torch.manual_seed(0)
    state = minirob_to_hf(minirob.RobertaForMaskedLM(CONFIG))
    state[ESCAPES] = torch.zeros(2)
    code, out, _ = run_cli(capsys, ["convert", model_dir(tmp_path / "extra", state), tmp_path / "o"])
    assert code == 0 and "\x1b" not in out and r"evil\n\x1b[31mINFO" in out


# ----------------------------------------------------------------------------- fairseq files
@pytest.fixture(scope="module")
def sapiens_raw():
    return safe_torch_load(fetch("sapiens", progress=False) / "checkpoint_vh.pt")


def crafted_fairseq(tmp_path, raw, args=None, drop=(), replace=None):
    args_ns = raw["args"].__class__(**{**vars(raw["args"]), **(args or {})})
    weights = {k: v for k, v in raw["model"].items() if k not in drop}
    weights.update(replace or {})
    path = tmp_path / "model.pt"
    torch.save({"args": args_ns, "model": weights}, path)
    return path


FAIRSEQ_ARGS = [
    ({"dropout": [0.1]}, "args.dropout must be a number, got [0.1] (list)"),
    ({"max_positions": "144"}, "args.max_positions must be an integer, got '144' (str)"),
    ({"activation_fn": {"name": "gelu"}}, "args.activation_fn must be a string"),
    ({"encoder_layers": 4.0}, "args.encoder_layers must be an integer"),
    ({"encoder_embed_dim": 10**9}, "config.hidden_size=1000000000 is above"),
]


@pytest.mark.parametrize("args, needle", FAIRSEQ_ARGS, ids=[next(iter(a)) for a, _ in FAIRSEQ_ARGS])
def test_fairseq_args_of_the_wrong_type(sapiens_raw, tmp_path, args, needle):
    path = crafted_fairseq(tmp_path, sapiens_raw, args=args)
    with pytest.raises(MinirobError) as caught:
        minirob.RobertaForMaskedLM.from_pretrained(path)
    one_line(caught.value, needle, "model.pt")


LAYER = "decoder.sentence_encoder.layers.{}."  # sapiens uses the legacy `decoder.` names
FAIRSEQ_TENSORS = [
    ({"drop": [LAYER.format(2) + "fc1.weight"]},
     "no encoder.sentence_encoder.layers.2.fc1.weight (layer 2 of 4 is incomplete)"),
    ({"drop": [LAYER.format(0) + "fc1.weight", LAYER.format(0) + "fc1.bias"]},
     "no encoder.sentence_encoder.layers.0.fc1.weight"),
    ({"drop": ["decoder.sentence_encoder.embed_positions.weight"]},
     "no encoder.sentence_encoder.embed_positions.weight"),
    ({"replace": {"decoder.sentence_encoder.embed_tokens.weight": torch.zeros(25)}},
     "encoder.sentence_encoder.embed_tokens.weight has shape (25,); expected 2 dimensions"),
    ({"replace": {ESCAPES: torch.zeros(1)}}, r"evil\n\x1b[31mINFO"),
]


@pytest.mark.parametrize("change, needle", FAIRSEQ_TENSORS,
                         ids=["fc1 of layer 2", "fc1 of layer 0", "embed_positions",
                              "1-D embedding", "escaped name"])
def test_fairseq_weights_missing_or_misshapen(sapiens_raw, tmp_path, change, needle):
    path = crafted_fairseq(tmp_path, sapiens_raw, **change)
    with pytest.raises(MinirobError) as caught:
        minirob.RobertaForMaskedLM.from_pretrained(path)
    one_line(caught.value, needle, "model.pt")


# --------------------------------------------------------------------------------- disk full
def disk_full(kind: str):
    def writer(state, path, metadata=None):
        with open(path, "wb") as handle:  # a first part written, as a real full disk leaves it
            handle.write(b"\0" * 1000)
        if kind == "safetensors":  # what safetensors raises: its own type, the OS error as text
            raise safetensors.SafetensorError(
                'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                '"No space left on device" })')
        raise OSError(errno.ENOSPC, "No space left on device", path)
    return writer


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("kind", ["OSError", "safetensors"])
def test_save_pretrained_on_a_full_disk(tmp_path, monkeypatch, kind):
    model = minirob.RobertaForMaskedLM(CONFIG)
    monkeypatch.setattr(minirob.weights, "save_file", disk_full(kind))
    with pytest.raises(WriteError) as caught:
        model.save_pretrained(tmp_path / "out")
    one_line(caught.value, str(tmp_path / "out" / "model.safetensors"), "no space left",
             "needs about 0.0 MB")
    assert leftovers(tmp_path / "out") == []  # no config.json alone, no staging folder


def test_convert_on_a_full_disk(tmp_path, monkeypatch, capsys):
    source = model_dir(tmp_path / "src")
    monkeypatch.setattr(minirob.weights, "save_file", disk_full("safetensors"))
    code, _, err = run_cli(capsys, ["convert", source, tmp_path / "out"])
    assert code == 1 and err.count("\n") == 1 and "no space left" in err
    assert "model.safetensors" in err and "Traceback" not in err
    assert leftovers(tmp_path / "out") == []


def test_convert_vocabulary_copy_on_a_full_disk(tmp_path, monkeypatch, capsys):
    import minirob.commands.convert as convert

    source = model_dir(tmp_path / "src")
    (source / "vocab.txt").write_text("[PAD]\n")

    def full(src, dst):
        open(dst, "wb").close()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(convert.shutil, "copyfile", full)
    code, _, err = run_cli(capsys, ["convert", source, tmp_path / "out"])
    assert code == 1 and "vocab.txt" in err and "no space left" in err
    assert not any(name.endswith(".tmp") or name == "vocab.txt"
                   for name in leftovers(tmp_path / "out"))


# ------------------------------------------------------------------------ stale staging folders
def test_stale_staging_folders_are_removed_live_ones_kept(tmp_path):
    host = socket.gethostname().replace("-", "_")
    parent = tmp_path / "out"
    parent.mkdir()
    dead = parent / f".saving-{host}-999999999-abc"  # no such process
    alive = parent / f".saving-{host}-{os.getpid()}-def"  # a saver still writing (this process)
    elsewhere = parent / ".saving-otherhost-12-ghi"  # another machine's: cannot tell, keep a day
    ancient = parent / ".saving-k3j2"  # the older unnamed form, two days old
    for folder in (dead, alive, elsewhere, ancient):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"\0" * 100)
    two_days_ago = time.time() - 2 * 86400
    os.utime(ancient, (two_days_ago, two_days_ago))
    minirob.RobertaForMaskedLM(CONFIG).save_pretrained(parent)
    assert leftovers(parent) == sorted(
        ["config.json", "model.safetensors", alive.name, elsewhere.name])
