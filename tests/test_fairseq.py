"""Real fairseq RoBERTa checkpoints (sapiens antibody models) through minirob's mapping.

References:
* transformers' ``RobertaForMaskedLM``, given the HF-named weights our fairseq -> HF table makes
  (the recipe of transformers' convert_roberta_original_pytorch_checkpoint_to_pytorch.py);
* an encoder assembled from ``torch.nn.TransformerEncoderLayer`` straight from fairseq's names,
  so a mistake shared by the table and minirob (say, q and k swapped) cannot hide;
* what the model was trained for: infilling masked residues of real antibodies.

The checkpoints come from the ``sapiens==1.0.5`` wheel via ``minirob.datasets.fetch("sapiens")``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import types

import pytest
import torch
import torch.nn.functional as F
import transformers

import minirob
from minirob.datasets import fetch
from minirob.errors import CheckpointError, ConfigError, UnsafeCheckpointError
from minirob.fairseq import load_fairseq, read_dictionary
from minirob.safe_pickle import Opaque, safe_torch_load
from minirob.weights import read_checkpoint

# Variable domains of three approved therapeutic antibodies (public sequences):
# trastuzumab (PDB 1N8Z; Carter et al., PNAS 1992), adalimumab (DrugBank DB00051; US patent
# 6,090,382) and pembrolizumab (PDB 5DK3; its VH is also the example in sapiens' own README).
HEAVY = {
    "trastuzumab": "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS",
    "adalimumab": "EVQLVESGGGLVQPGRSLRLSCAASGFTFDDYAMHWVRQAPGKGLEWVSAITWNSGHIDYADSVEGRFTISRDNAKNSLYLQMNSLRAEDTAVYYCAKVSYLSTASSLDYWGQGTLVTVSS",
    "pembrolizumab": "QVQLVQSGVEVKKPGASVKVSCKASGYTFTNYYMYWVRQAPGQGLEWMGGINPSNGGTNFNEKFKNRVTLTTDSSTTTAYMELKSLQFDDTAVYYCARRDYRFDMGFDYWGQGTTVTVSS",
}
LIGHT = {
    "trastuzumab": "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK",
    "adalimumab": "DIQMTQSPSSLSASVGDRVTITCRASQGIRNYLAWYQQKPGKAPKLLIYAASTLQSGVPSRFSGSGSGTDFTLTISSLQPEDVATYYCQRYNRAPYTFGQGTKVEIK",
    "pembrolizumab": "EIVLTQSPATLSLSPGERATLSCRASKGVSTSGYSYLHWYQQKPGQAPRLLIYLASYLESGVPARFSGSGSGTDFTLTISSLEPEDFAVYYCQHSRDLPLTFGGGTKVEIK",
}
CHAINS = {"checkpoint_vh.pt": HEAVY, "checkpoint_vl.pt": LIGHT}


@pytest.fixture(scope="module")
def sapiens():
    return fetch("sapiens", progress=False)


def encode(symbols: list[str], sequences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Residue strings -> padded (B, T) ids ``<s> residues </s> <pad>...`` and attention mask."""
    index = {symbol: i for i, symbol in enumerate(symbols)}
    rows = [[index["<s>"]] + [index[c] for c in seq] + [index["</s>"]] for seq in sequences]
    ids = torch.full((len(rows), max(map(len, rows))), index["<pad>"])
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row)
    return ids, (ids != index["<pad>"]).long()


def save_fairseq(path, weights, **extra):
    torch.save({"model": weights, **extra}, path)


def raw_checkpoint(sapiens, name="checkpoint_vh.pt"):
    return safe_torch_load(sapiens / name)


# ------------------------------------------------------------------------- vocabulary, config
def test_vocabulary_is_specials_then_dict_then_mask(sapiens):
    symbols = read_dictionary(sapiens / "dict.txt")
    in_file = [line.split()[0] for line in (sapiens / "dict.txt").read_text().splitlines()]
    assert symbols == ["<s>", "<pad>", "</s>", "<unk>", *in_file, "<mask>"]
    assert len(in_file) == 20 and len(symbols) == 25  # the 20 amino acids


def test_malformed_dictionary_names_file_and_line(tmp_path):
    bad = tmp_path / "dict.txt"
    bad.write_text("A 1\nC many\n")
    with pytest.raises(CheckpointError, match=r"dict\.txt, line 2"):
        read_dictionary(bad)


@pytest.mark.parametrize("name, positions", [("checkpoint_vh.pt", 146), ("checkpoint_vl.pt", 130)])
def test_architecture_read_from_pickled_args(sapiens, name, positions):
    raw = raw_checkpoint(sapiens, name)
    assert isinstance(raw["args"], argparse.Namespace) and raw["args"].arch == "roberta_small"
    config = load_fairseq(sapiens / name).config
    # sapiens registers roberta_small as 4 layers, width 128, 8 heads, FFN 256 (sapiens/roberta.py)
    assert (config.num_hidden_layers, config.hidden_size) == (4, 128)
    assert (config.num_attention_heads, config.intermediate_size) == (8, 256)
    assert config.vocab_size == 25 and config.max_position_embeddings == positions
    assert raw["args"].max_positions + 2 == positions  # fairseq's pad + 1 offset


# ------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("name", ["checkpoint_vh.pt", "checkpoint_vl.pt"])
def test_mlm_logits_equal_transformers(sapiens, name):
    checkpoint = load_fairseq(sapiens / name)
    reference = transformers.RobertaForMaskedLM(
        transformers.RobertaConfig(**checkpoint.config.to_hf_dict())
    ).eval()
    reference.load_state_dict(checkpoint.state, strict=True)  # every HF weight filled, no extras
    ids, mask = encode(checkpoint.symbols, list(CHAINS[name].values()))  # padded: 3 lengths
    assert not bool(mask.all())
    with torch.no_grad():
        theirs = reference(input_ids=ids, attention_mask=mask).logits
    for backend in ("fused", "manual"):  # torch's SDPA kernel, and attention written out
        model = minirob.RobertaForMaskedLM.from_pretrained(
            sapiens / name, attention_backend=backend
        ).eval()
        assert model.load_report.newly_initialised == [] and model.load_report.unused == []
        with torch.no_grad():
            ours = model(ids, attention_mask=mask)
        difference = (ours - theirs)[mask.bool()].abs().max().item()
        scale = theirs[mask.bool()].abs().max().item()
        print(f"{name} ({backend}): max |minirob - transformers| MLM logit difference = "
              f"{difference:.3g} (largest |logit| {scale:.3g})")
        # fused: the default runs the same kernels in the same order as transformers, so the
        # logits are bit-identical (README and docs/weights.md say 0.0). manual: float32
        # summation order differs, so the bound is 1e-5 relative to the logits' scale.
        if backend == "fused":
            assert difference == 0.0
        else:
            assert difference < 1e-5 * max(1.0, scale)


def fairseq_reference_encoder(weights: dict, heads: int, ids: torch.Tensor) -> torch.Tensor:
    """fairseq RoBERTa's forward pass built from its raw weight names with torch.nn layers."""
    w = {k.replace("decoder.", "encoder.", 1): v for k, v in weights.items()}
    prefix = "encoder.sentence_encoder."
    pad = 1
    not_pad = ids.ne(pad).long()
    positions = torch.cumsum(not_pad, dim=1) * not_pad + pad  # fairseq's utils.make_positions
    x = F.embedding(ids, w[prefix + "embed_tokens.weight"]) + F.embedding(
        positions, w[prefix + "embed_positions.weight"]
    )
    hidden = x.shape[-1]
    x = F.layer_norm(x, (hidden,), w[prefix + "emb_layer_norm.weight"],
                     w[prefix + "emb_layer_norm.bias"], eps=1e-5)
    layer_count = len({k.split(".")[3] for k in w if k.startswith(prefix + "layers.")})
    for i in range(layer_count):
        p = f"{prefix}layers.{i}."
        layer = torch.nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=w[p + "fc1.weight"].shape[0], dropout=0.0,
            activation="gelu", layer_norm_eps=1e-5, batch_first=True, norm_first=False,
        ).eval()
        state = {
            "self_attn.in_proj_weight": torch.cat([w[p + f"self_attn.{n}_proj.weight"] for n in "qkv"]),
            "self_attn.in_proj_bias": torch.cat([w[p + f"self_attn.{n}_proj.bias"] for n in "qkv"]),
            "self_attn.out_proj.weight": w[p + "self_attn.out_proj.weight"],
            "self_attn.out_proj.bias": w[p + "self_attn.out_proj.bias"],
            "linear1.weight": w[p + "fc1.weight"], "linear1.bias": w[p + "fc1.bias"],
            "linear2.weight": w[p + "fc2.weight"], "linear2.bias": w[p + "fc2.bias"],
            "norm1.weight": w[p + "self_attn_layer_norm.weight"],
            "norm1.bias": w[p + "self_attn_layer_norm.bias"],
            "norm2.weight": w[p + "final_layer_norm.weight"],
            "norm2.bias": w[p + "final_layer_norm.bias"],
        }
        layer.load_state_dict(state)
        x = layer(x, src_key_padding_mask=ids.eq(pad))
    return x


def test_encoder_equals_torch_transformer_layers_built_from_fairseq_names(sapiens):
    raw = raw_checkpoint(sapiens)
    symbols = read_dictionary(sapiens / "dict.txt")
    ids, mask = encode(symbols, list(HEAVY.values()))
    with torch.no_grad():
        expected = fairseq_reference_encoder(raw["model"], raw["args"].encoder_attention_heads, ids)
        model = minirob.RobertaModel.from_pretrained(sapiens / "checkpoint_vh.pt").eval()
        ours = model(ids, attention_mask=mask)
    difference = (ours - expected)[mask.bool()].abs().max().item()
    print(f"max |minirob - torch.nn.TransformerEncoderLayer| hidden difference = {difference:.3g}")
    assert difference < 1e-5


@pytest.mark.parametrize("name", ["checkpoint_vh.pt", "checkpoint_vl.pt"])
def test_masked_residues_are_recovered(sapiens, name):
    """Mask each residue alone; the argmax over the 20 amino acids should restore it."""
    symbols = read_dictionary(sapiens / "dict.txt")
    residue = torch.tensor([len(s) == 1 and s.isalpha() for s in symbols])  # the 20 amino acids
    model = minirob.RobertaForMaskedLM.from_pretrained(sapiens / name).eval()
    hits = total = 0
    for sequence in CHAINS[name].values():
        ids, _ = encode(symbols, [sequence])
        n = len(sequence)
        batch = ids.repeat(n, 1)  # (n, n + 2): row r masks residue r
        rows, where = torch.arange(n), torch.arange(n) + 1
        batch[rows, where] = symbols.index("<mask>")
        predict_at = torch.zeros_like(batch, dtype=torch.bool)
        predict_at[rows, where] = True
        with torch.no_grad():
            logits = model(batch, predict_at=predict_at)  # (n, V)
        guess = logits.masked_fill(~residue, float("-inf")).argmax(-1)
        hits += int((guess == ids[0, where]).sum())
        total += n
    rate = hits / total
    print(f"{name}: recovered {hits}/{total} masked residues = {rate:.1%} (chance ~5%)")
    assert rate > 0.7  # measured: 79.8% (VH), 84.9% (VL)


# ----------------------------------------------------------------------------------- layouts
def to_current_layout(weights: dict) -> dict:
    """The same weights under current fairseq names (encoder., layernorm_embedding)."""
    return {
        k.replace("decoder.", "encoder.", 1).replace("emb_layer_norm", "layernorm_embedding"): v
        for k, v in weights.items()
    }


def to_packed_layout(weights: dict) -> dict:
    """Legacy fairseq's single in_proj_weight/bias holding q, k, v stacked (in that order)."""
    packed = {}
    for name, tensor in weights.items():
        if ".self_attn.q_proj." in name:
            param = name.rsplit(".", 1)[1]
            base = name.split(".self_attn.")[0] + ".self_attn."
            packed[base + f"in_proj_{param}"] = torch.cat(
                [weights[base + f"{n}_proj.{param}"] for n in "qkv"]
            )
        elif not any(f".self_attn.{n}_proj." in name for n in "qkv"):
            packed[name] = tensor
    return packed


def test_current_and_packed_layouts_load_to_the_same_model(sapiens, tmp_path):
    raw = raw_checkpoint(sapiens)
    args = vars(raw["args"])
    symbols = read_dictionary(sapiens / "dict.txt")
    ids, mask = encode(symbols, list(HEAVY.values()))
    original = minirob.RobertaForMaskedLM.from_pretrained(sapiens / "checkpoint_vh.pt").eval()
    with torch.no_grad():
        expected = original(ids, mask)
    variants = {
        # newer fairseq: weights under encoder., architecture in cfg["model"] (a plain dict)
        "current": (to_current_layout(raw["model"]), {"cfg": {"model": args}, "args": None}),
        "packed": (to_packed_layout(raw["model"]), {"args": raw["args"]}),
    }
    assert any("in_proj_weight" in k for k in variants["packed"][0])
    for label, (weights, extra) in variants.items():
        directory = tmp_path / label
        directory.mkdir()
        save_fairseq(directory / "model.pt", weights, **extra)
        shutil.copy(sapiens / "dict.txt", directory / "dict.txt")
        model = minirob.RobertaForMaskedLM.from_pretrained(directory).eval()  # a directory works
        with torch.no_grad():
            assert torch.equal(model(ids, mask), expected), label


def test_classification_head_loads_into_sequence_classifier(sapiens, tmp_path):
    raw = raw_checkpoint(sapiens)
    torch.manual_seed(0)
    weights = dict(raw["model"])
    weights["classification_heads.humanness.dense.weight"] = torch.randn(128, 128) * 0.1
    weights["classification_heads.humanness.dense.bias"] = torch.randn(128) * 0.1
    weights["classification_heads.humanness.out_proj.weight"] = torch.randn(3, 128) * 0.1
    weights["classification_heads.humanness.out_proj.bias"] = torch.randn(3) * 0.1
    save_fairseq(tmp_path / "model.pt", weights, args=raw["args"])
    checkpoint = load_fairseq(tmp_path / "model.pt")
    assert checkpoint.heads == ["humanness"] and checkpoint.config.num_labels == 3

    model = minirob.RobertaForSequenceClassification.from_pretrained(tmp_path / "model.pt").eval()
    assert model.load_report.newly_initialised == []
    reference = transformers.RobertaForSequenceClassification(
        transformers.RobertaConfig(**checkpoint.config.to_hf_dict())
    ).eval()
    missing, unexpected = reference.load_state_dict(checkpoint.state, strict=False)
    assert missing == [] and all(k.startswith("lm_head.") for k in unexpected)
    ids, mask = encode(read_dictionary(sapiens / "dict.txt"), list(HEAVY.values()))
    with torch.no_grad():
        ours, theirs = model(ids, mask), reference(input_ids=ids, attention_mask=mask).logits
    assert ours.shape == (3, 3) and (ours - theirs).abs().max().item() < 1e-5

    # two heads: the caller picks one; an unknown name is refused naming the ones there are
    weights["classification_heads.other.out_proj.weight"] = torch.zeros(2, 128)
    save_fairseq(tmp_path / "two.pt", weights, args=raw["args"])
    assert load_fairseq(tmp_path / "two.pt", head="humanness").config.num_labels == 3
    with pytest.raises(CheckpointError, match="humanness, other"):
        load_fairseq(tmp_path / "two.pt", head="mnli")


# ---------------------------------------------------------------------------------- bad input
def test_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "model.pt"
    torch.save({"args": Payload(), "model": {}}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"(posix|os|nt)\.system") as error:
        minirob.RobertaForMaskedLM.from_pretrained(path)
    assert str(path) in str(error.value)
    assert not marker.exists()
    # The bait is live: a plain unpickler does run it (which is why minirob never uses one).
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_allow_list_on_hand_written_pickles():
    """Protocol-0 pickles written out by hand: what the unpickler admits and what it refuses."""
    import io

    from minirob.safe_pickle import RestrictedUnpickler

    def load(data: bytes):
        return RestrictedUnpickler(io.BytesIO(data)).load()

    assert load(b"c__builtin__\nset\n((lp0\nI1\naI2\natR.") == {1, 2}  # Python 2 names mapped
    assert load(b"cargparse\nNamespace\n)R}(S'arch'\nS'roberta'\nub.").arch == "roberta"
    for module, name in [("os", "system"), ("__builtin__", "eval"), ("subprocess", "Popen"),
                         ("torch", "load"), ("builtins", "getattr")]:
        payload = f"c{module}\n{name}\n(S'echo 1'\ntR.".encode()
        with pytest.raises(UnsafeCheckpointError, match="allow-list"):
            load(payload)


def test_fairseq_bookkeeping_classes_become_inert_stand_ins(tmp_path, monkeypatch):
    """fairseq's meter objects are recorded as data; fairseq is never imported."""
    for parent in ("fairseq", "fairseq.logging"):  # pickle imports the parents while saving
        monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
    module = types.ModuleType("fairseq.logging.meters")

    class AverageMeter:
        def __init__(self):
            self.val = 1.5

    AverageMeter.__module__, AverageMeter.__qualname__ = module.__name__, "AverageMeter"
    module.AverageMeter = AverageMeter
    monkeypatch.setitem(sys.modules, module.__name__, module)
    torch.save({"meter": AverageMeter()}, tmp_path / "meters.pt")
    for name in ("fairseq", "fairseq.logging", "fairseq.logging.meters"):
        monkeypatch.delitem(sys.modules, name)
    loaded = safe_torch_load(tmp_path / "meters.pt")["meter"]
    assert isinstance(loaded, Opaque) and loaded.state == {"val": 1.5}
    assert "fairseq.logging.meters" not in sys.modules


def test_truncated_corrupted_and_empty_checkpoints(sapiens, tmp_path):
    data = (sapiens / "checkpoint_vh.pt").read_bytes()
    cases = {
        "truncated.pt": data[: len(data) // 2],
        "corrupted.pt": b"\x00garbage" * 64 + data[512:],
        "empty.pt": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
            minirob.RobertaForMaskedLM.from_pretrained(tmp_path / name)


def test_other_architectures_are_refused(sapiens, tmp_path):
    raw = raw_checkpoint(sapiens)
    gpt2 = {"transformer.h.0.attn.c_attn.weight": torch.zeros(128, 384),
            "transformer.wte.weight": torch.zeros(25, 128)}
    save_fairseq(tmp_path / "gpt2.pt", gpt2, args=raw["args"])
    with pytest.raises(CheckpointError, match="not a fairseq RoBERTa checkpoint.*transformer.h.0"):
        read_checkpoint(tmp_path / "gpt2.pt")
    torch.save({"state_dict": {"conv1.weight": torch.zeros(8, 3, 3, 3)}}, tmp_path / "resnet.pt")
    with pytest.raises(CheckpointError, match="not a fairseq checkpoint.*state_dict"):
        read_checkpoint(tmp_path / "resnet.pt")


def test_args_that_disagree_with_the_weights_are_refused(sapiens, tmp_path):
    raw = raw_checkpoint(sapiens)
    for field, value, message in [
        ("encoder_embed_dim", 256, r"encoder_embed_dim=256.*\(25, 128\)"),
        ("encoder_layers", 6, r"encoder_layers=6.*4 layers"),
        ("encoder_ffn_embed_dim", 512, r"encoder_ffn_embed_dim=512.*\(256, 128\)"),
        ("max_positions", 512, r"max_positions=512.*146"),
    ]:
        args = argparse.Namespace(**{**vars(raw["args"]), field: value})
        save_fairseq(tmp_path / "model.pt", raw["model"], args=args)
        with pytest.raises(ConfigError, match=message):
            read_checkpoint(tmp_path / "model.pt")


def test_dictionary_that_disagrees_with_the_weights_is_refused(sapiens, tmp_path):
    shutil.copy(sapiens / "checkpoint_vh.pt", tmp_path / "model.pt")
    (tmp_path / "dict.txt").write_text((sapiens / "dict.txt").read_text() + "X 1\n")
    with pytest.raises(CheckpointError, match=r"26 symbols.*25 rows"):
        read_checkpoint(tmp_path / "model.pt")
