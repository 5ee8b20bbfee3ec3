"""``minirob convert``: the output loads in transformers with no missing or unexpected keys and
gives the same numbers; bad sources fail with a one-line error naming the culprit.

Real checkpoints come from ``minirob.datasets.fetch`` (sapiens: fairseq; minilm: HF BERT).
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformers

import minirob
from minirob.cli import main
from minirob.datasets import fetch

# The first 30 residues of trastuzumab's heavy chain (PDB 1N8Z), as sapiens encodes a chain.
RESIDUES = "E V Q L V E S G G G L V Q P G G S L R L S C A A S G F N I K"


@pytest.fixture(scope="module")
def sapiens():
    return fetch("sapiens", progress=False)


@pytest.fixture(scope="module")
def minilm():
    return fetch("minilm", progress=False)


def convert(*argv) -> int:
    return main(["convert", *map(str, argv)])


def loads_cleanly(auto_class, directory):
    model, info = auto_class.from_pretrained(directory, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    assert not problems, problems
    return model.eval()


@pytest.mark.parametrize("name", ["checkpoint_vh.pt", "checkpoint_vl.pt"])
def test_fairseq_to_transformers(sapiens, tmp_path, capsys, name):
    assert convert(sapiens / name, tmp_path) == 0
    assert "RobertaForMaskedLM" in capsys.readouterr().out
    reference = loads_cleanly(transformers.AutoModelForMaskedLM, tmp_path)
    assert type(reference).__name__ == "RobertaForMaskedLM"

    # the vocabulary travels too: dict.txt as a tokenizer.json that both libraries read
    ours_tok = minirob.Tokenizer.from_pretrained(tmp_path)
    ids = torch.tensor([ours_tok.encode(RESIDUES).ids])
    their_ids = transformers.AutoTokenizer.from_pretrained(tmp_path)(RESIDUES)["input_ids"]
    assert ids[0].tolist() == their_ids
    assert ids[0, 0] == 0 and ids[0, -1] == 2 and ids.shape[1] == 32  # <s> 30 residues </s>

    original = minirob.RobertaForMaskedLM.from_pretrained(sapiens / name).eval()
    ids[0, 5] = ours_tok.mask_id
    with torch.no_grad():
        difference = (original(ids) - reference(input_ids=ids).logits).abs().max().item()
    print(f"{name}: converted, max |minirob(fairseq) - transformers(converted)| = {difference:.3g}")
    assert difference == 0.0  # same weights, same kernels (docs/weights.md: "0.0")


def test_bert_checkpoint_round_trip(minilm, tmp_path):
    assert convert(minilm, tmp_path) == 0
    reference = loads_cleanly(transformers.AutoModel, tmp_path)
    assert type(reference).__name__ == "BertModel"
    for name in ("tokenizer.json", "vocab.txt"):
        assert (tmp_path / name).read_bytes() == (minilm / name).read_bytes()
    original = minirob.RobertaModel.from_pretrained(minilm).eval()
    ids = torch.tensor([[101, 7592, 2088, 999, 102, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        ours = original(ids, attention_mask=mask)
        theirs = reference(input_ids=ids, attention_mask=mask)
    assert (ours - theirs.last_hidden_state)[mask.bool()].abs().max().item() < 1e-5
    assert (original.pool(ours) - theirs.pooler_output).abs().max().item() < 1e-5  # kept


def test_old_hf_layout_is_normalised(tmp_path):
    """pytorch_model.bin, LayerNorm.gamma/beta, a stale position_ids buffer -> clean safetensors."""
    torch.manual_seed(0)
    config = transformers.RobertaConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=40,
    )
    reference = transformers.RobertaForMaskedLM(config).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    old = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
        for k, v in reference.state_dict().items()
    }
    old["roberta.embeddings.position_ids"] = torch.arange(40)[None]
    source = tmp_path / "old"
    source.mkdir()
    torch.save(old, source / "pytorch_model.bin")
    (source / "config.json").write_text(json.dumps(config.to_dict()))
    out = tmp_path / "new"
    assert convert(source, out) == 0
    assert (out / "model.safetensors").exists() and not (out / "pytorch_model.bin").exists()
    converted = loads_cleanly(transformers.AutoModelForMaskedLM, out)
    ids = torch.tensor([[0, 5, 17, 33, 2, 1, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).logits
        got = converted(input_ids=ids, attention_mask=mask).logits
        ours = minirob.RobertaForMaskedLM.from_pretrained(out).eval()(ids, mask)
    assert (got - expected)[mask.bool()].abs().max().item() < 1e-5
    assert (ours - expected)[mask.bool()].abs().max().item() < 1e-5


def test_encoder_only_output(sapiens, tmp_path):
    assert convert(sapiens / "checkpoint_vh.pt", tmp_path, "--model", "encoder") == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["RobertaModel"]
    model = minirob.RobertaModel.from_pretrained(tmp_path)
    assert model.config.num_hidden_layers == 4


# ---------------------------------------------------------------------------------- bad input
def save_other_architecture(kind: str, directory):
    """A tiny transformers GPT-2 or ViT checkpoint: real key names of another architecture."""
    if kind == "gpt2":
        model = transformers.GPT2Model(transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2,
                                                               vocab_size=50, n_positions=16))
    else:
        model = transformers.ViTModel(transformers.ViTConfig(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
            image_size=16, patch_size=8))
    model.save_pretrained(directory)


@pytest.mark.parametrize("kind, model_type", [("gpt2", "gpt2"), ("vit", "vit")])
def test_other_architectures_are_named(tmp_path, capsys, kind, model_type):
    source = tmp_path / kind
    save_other_architecture(kind, source)
    assert convert(source, tmp_path / "out") == 1
    error = capsys.readouterr().err
    assert f"model_type='{model_type}'" in error and "not a RoBERTa or BERT" in error
    assert "Traceback" not in error
    # the same weights under a RoBERTa config.json: refused by what the keys are
    (source / "config.json").write_text(json.dumps(transformers.RobertaConfig().to_dict()))
    assert convert(source, tmp_path / "out") == 1
    error = capsys.readouterr().err
    assert "no RoBERTa/BERT word-embedding table" in error and "another architecture" in error


def test_config_that_disagrees_with_the_weights(minilm, tmp_path, capsys):
    source = tmp_path / "minilm"
    source.mkdir()
    shutil.copy(minilm / "model.safetensors", source)
    config = json.loads((minilm / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "intermediate_size": 1024}))
    assert convert(source, tmp_path / "out") == 1
    error = capsys.readouterr().err
    assert "feed_forward.up" in error  # minirob's name for layer 0's intermediate.dense
    assert "1536" in error and "1024" in error

    (source / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 8}))
    assert convert(source, tmp_path / "out") == 1
    assert "encoder weights missing" in capsys.readouterr().err


def test_truncated_files_and_existing_output(minilm, sapiens, tmp_path, capsys):
    source = tmp_path / "cut"
    source.mkdir()
    shutil.copy(minilm / "config.json", source)
    data = (minilm / "model.safetensors").read_bytes()
    (source / "model.safetensors").write_bytes(data[: len(data) // 3])
    assert convert(source, tmp_path / "out") == 1
    assert "not a valid safetensors file" in capsys.readouterr().err

    cut_pt = tmp_path / "model.pt"
    cut_pt.write_bytes((sapiens / "checkpoint_vl.pt").read_bytes()[:100_000])
    assert convert(cut_pt, tmp_path / "out") == 1
    error = capsys.readouterr().err  # safe_pickle names the cut: truncated, or storage past the end
    assert "model.pt" in error and ("truncated or corrupted" in error or "more than the file holds" in error)

    out = tmp_path / "done"
    assert convert(sapiens / "checkpoint_vl.pt", out) == 0
    assert convert(sapiens / "checkpoint_vl.pt", out) == 1
    assert "--force" in capsys.readouterr().err
    assert convert(sapiens / "checkpoint_vl.pt", out, "--force") == 0
