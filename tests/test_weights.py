"""Loading HF-layout checkpoints: legacy names, missing and extra weights, clear errors.

Checkpoints here are written by hand under transformers' names (the names are those of
transformers' modeling_roberta.py), so these tests need no transformers.
"""

import json
import logging
import pickle

import pytest
import torch
from safetensors.torch import save_file

import minirob
from minirob.weights import minirob_to_hf

CONFIG = minirob.RobertaConfig(
    vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=32, max_position_embeddings=20, num_labels=3,
)


def hf_state(model_class=minirob.RobertaForMaskedLM, seed=0):
    torch.manual_seed(seed)
    return model_class(CONFIG), minirob_to_hf(model_class(CONFIG))


def write(directory, state, config=CONFIG, name="model.safetensors"):
    directory.mkdir(parents=True, exist_ok=True)
    config.save(directory / "config.json")
    if name.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in state.items()}, str(directory / name))
    else:
        torch.save(state, directory / name)
    return directory


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_hf_names_are_the_expected_ones():
    _, state = hf_state()
    assert "roberta.embeddings.word_embeddings.weight" in state
    assert "roberta.encoder.layer.1.attention.self.query.weight" in state
    assert "roberta.encoder.layer.0.output.LayerNorm.bias" in state
    assert "lm_head.layer_norm.weight" in state and "lm_head.bias" in state


def test_legacy_checkpoint_forms_load(tmp_path):
    torch.manual_seed(3)
    original = minirob.RobertaForMaskedLM(CONFIG)
    state = minirob_to_hf(original)
    legacy = {}
    for name, value in state.items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        legacy[name] = value
    legacy["roberta.embeddings.position_ids"] = torch.arange(20)[None]  # stale buffer
    legacy["lm_head.decoder.weight"] = state["roberta.embeddings.word_embeddings.weight"]
    legacy["roberta.pooler.dense.weight"] = torch.zeros(16, 16)  # HF's untrained pooler
    legacy["roberta.pooler.dense.bias"] = torch.zeros(16)
    loaded = minirob.RobertaForMaskedLM.from_pretrained(write(tmp_path, legacy, name="pytorch_model.bin"))
    assert same_weights(original, loaded)
    assert loaded.load_report.newly_initialised == []
    assert "roberta.pooler.dense.weight" in loaded.load_report.unused


def test_checkpoint_without_roberta_prefix_loads_into_the_encoder(tmp_path):
    torch.manual_seed(4)
    original = minirob.RobertaModel(CONFIG)
    state = minirob_to_hf(original)  # bare names: embeddings.*, encoder.*, pooler.*
    assert "embeddings.word_embeddings.weight" in state
    loaded = minirob.RobertaModel.from_pretrained(write(tmp_path, state))
    assert same_weights(original, loaded)
    # ... and into a task model, whose encoder sits under `roberta.`
    task = minirob.RobertaForMaskedLM.from_pretrained(tmp_path)
    assert torch.equal(task.roberta.embeddings.token.weight, original.embeddings.token.weight)
    assert task.load_report.newly_initialised == [
        "lm_head.bias", "lm_head.dense.weight", "lm_head.dense.bias",
        "lm_head.norm.weight", "lm_head.norm.bias",
    ]


def test_new_task_head_is_initialised_and_reported(tmp_path, caplog):
    _, state = hf_state()
    with caplog.at_level(logging.WARNING, logger="minirob"):
        clf = minirob.RobertaForSequenceClassification.from_pretrained(write(tmp_path, state))
    assert sorted(clf.load_report.newly_initialised) == sorted([
        "classifier.dense.weight", "classifier.dense.bias",
        "classifier.out_proj.weight", "classifier.out_proj.bias",
    ])
    assert "lm_head.dense.weight" in clf.load_report.unused
    assert "newly initialised" in caplog.text and "classifier.out_proj.weight" in caplog.text
    assert abs(clf.classifier.dense.weight.std().item() - 0.02) < 0.01


def test_missing_encoder_weight_is_an_error_naming_it(tmp_path):
    _, state = hf_state()
    del state["roberta.encoder.layer.1.attention.self.key.weight"]
    with pytest.raises(minirob.CheckpointError, match=r"encoder\.layers\.1\.attention\.key\.weight"):
        minirob.RobertaForMaskedLM.from_pretrained(write(tmp_path, state))


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    _, state = hf_state()
    state["roberta.encoder.layer.0.intermediate.dense.weight"] = torch.zeros(33, 16)
    with pytest.raises(minirob.CheckpointError,
                       match=r"feed_forward\.up\.weight' has shape \(33, 16\), but the config expects \(32, 16\)"):
        minirob.RobertaForMaskedLM.from_pretrained(write(tmp_path, state))


def test_head_with_other_label_count_is_explained(tmp_path):
    _, state = hf_state(minirob.RobertaForSequenceClassification)
    write(tmp_path, state)
    with pytest.raises(minirob.CheckpointError, match=r"different number of labels than num_labels=5"):
        minirob.RobertaForSequenceClassification.from_pretrained(tmp_path, num_labels=5)


def test_other_architecture_is_refused(tmp_path):
    gpt2_like = {"transformer.h.0.attn.c_attn.weight": torch.zeros(4, 12), "lm_head.weight": torch.zeros(4, 4)}
    with pytest.raises(minirob.CheckpointError, match="another architecture"):
        minirob.RobertaModel.from_pretrained(write(tmp_path, gpt2_like))


def test_missing_config_and_missing_files(tmp_path):
    _, state = hf_state()
    save_file(state, str(tmp_path / "weights.safetensors"))
    with pytest.raises(FileNotFoundError, match="no config.json next to"):
        minirob.RobertaModel.from_pretrained(tmp_path / "weights.safetensors")
    loaded = minirob.RobertaForMaskedLM.from_pretrained(tmp_path / "weights.safetensors", config=CONFIG)
    assert loaded.load_report.newly_initialised == []
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        minirob.RobertaModel.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no weights found"):
        minirob.RobertaModel.from_pretrained(tmp_path / "empty")


def test_bin_files_are_read_with_weights_only(tmp_path):
    class Sneaky:
        def __reduce__(self):
            return (print, ("this must never run",))

    write(tmp_path, {}, name="config-only.json")
    with open(tmp_path / "pytorch_model.bin", "wb") as f:
        pickle.dump({"x": Sneaky()}, f)
    with pytest.raises(minirob.CheckpointError, match="weights_only=True"):
        minirob.RobertaModel.from_pretrained(tmp_path)


def test_two_weight_files_that_disagree(tmp_path):
    _, state = hf_state()
    write(tmp_path, state)
    other = dict(state)
    other["lm_head.bias"] = other["lm_head.bias"] + 1
    torch.save(other, tmp_path / "pytorch_model.bin")
    with pytest.raises(minirob.CheckpointError, match="hold different weights"):
        minirob.RobertaForMaskedLM.from_pretrained(tmp_path)


def test_truncated_safetensors(tmp_path):
    _, state = hf_state()
    write(tmp_path, state)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(minirob.CheckpointError, match="not a valid safetensors file"):
        minirob.RobertaForMaskedLM.from_pretrained(tmp_path)


def test_save_pretrained_writes_hf_layout(tmp_path):
    torch.manual_seed(5)
    model = minirob.RobertaForTokenClassification(CONFIG)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["RobertaForTokenClassification"]
    assert config["model_type"] == "roberta" and "attention_backend" not in config
    assert same_weights(model, minirob.RobertaForTokenClassification.from_pretrained(tmp_path))
