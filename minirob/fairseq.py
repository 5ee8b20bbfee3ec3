"""fairseq RoBERTa checkpoints (``model.pt`` + ``dict.txt``) -> config + weights under HF names.

fairseq is where RoBERTa was first trained. Its checkpoint is a pickled dict::

    {"args": argparse.Namespace(encoder_layers=..., ...)  # older fairseq; newer: "cfg": {"model": ...}
     "model": {name: tensor},                               # the weights
     "extra_state": ..., "optimizer_history": ..., ...}     # training bookkeeping, ignored

We translate it in two steps. This module renames fairseq's weights to transformers' RoBERTa names
(the recipe of transformers' own converter,
``transformers/models/roberta/convert_roberta_original_pytorch_checkpoint_to_pytorch.py``, restated as
``FAIRSEQ_TABLE`` in :mod:`minirob.names`); the same module then maps HF names to minirob's, as for
any HF checkpoint. So a
fairseq file loads into every minirob model, and ``minirob convert`` writes it out in the layout
transformers loads.

Layouts seen in the wild::

    current                                          legacy (fairseq <= 0.9)
    encoder.sentence_encoder.layernorm_embedding     decoder.sentence_encoder.emb_layer_norm
    ...layers.{i}.self_attn.{q,k,v}_proj             ...layers.{i}.self_attn.in_proj_weight (q;k;v)
    encoder.lm_head.*                                decoder.lm_head.*

The vocabulary lives in ``dict.txt`` next to the checkpoint: one ``symbol count`` per line; fairseq
puts ``<s> <pad> </s> <unk>`` (ids 0-3) before the file's symbols and the masked-LM task appends
``<mask>`` after them.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .config import RobertaConfig
from .errors import CheckpointError, ConfigError, MissingFileError, printable
from .names import FAIRSEQ_TABLE, compile_table, name_list, rename
from .safe_pickle import safe_torch_load, unwrap

logger = logging.getLogger("minirob")

SPECIAL_SYMBOLS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq Dictionary ids 0, 1, 2, 3
MASK_SYMBOL = "<mask>"

# Unused by inference: buffers and fairseq's own bookkeeping.
IGNORED = re.compile(r"(^|\.)_float_tensor$|(^|\.)version$|\.embed_positions\._float_tensor$")

# fairseq activation_fn -> config.hidden_act
ACTIVATIONS = {"gelu": "gelu", "gelu_accurate": "gelu_new", "relu": "relu"}

# Architecture defaults registered in fairseq for the names found in `args.arch`
# (layers, hidden, feed-forward, heads), used only when the args omit a field.
ARCH_DEFAULTS = {
    "roberta": (12, 768, 3072, 12),
    "roberta_base": (12, 768, 3072, 12),
    "roberta_large": (24, 1024, 4096, 16),
    "xlm": (16, 1280, 5120, 16),
}
ARGS_FIELDS = ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
               "encoder_attention_heads")


@dataclass
class FairseqCheckpoint:
    """Everything useful in a fairseq RoBERTa checkpoint, translated."""

    config: RobertaConfig
    state: dict[str, Tensor]  # HF RoBERTa names
    symbols: list[str] | None  # id -> symbol, from dict.txt (None when there is no dict.txt)
    heads: list[str] = field(default_factory=list)  # classification_heads.NAME found


# ----------------------------------------------------------------------------------- vocabulary
def read_dictionary(path: str | os.PathLike) -> list[str]:
    """fairseq ``dict.txt`` -> the model's vocabulary, id order: specials, file, ``<mask>``."""
    path = Path(path)
    symbols = list(SPECIAL_SYMBOLS)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise CheckpointError(f"{path}, line {line}: not UTF-8 text ({error.reason})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.rstrip()
        if not line:
            continue
        if line.endswith(" #fairseq:overwrite"):  # fairseq's flag to redefine a special symbol
            line = line[: -len(" #fairseq:overwrite")]
        symbol, _, count = line.rpartition(" ")
        if not symbol or not count.isdigit():
            raise CheckpointError(
                f"{path}, line {number}: expected '<symbol> <count>', got {line!r}"
            )
        if symbol in symbols and symbol not in SPECIAL_SYMBOLS:
            raise CheckpointError(f"{path}, line {number}: symbol {symbol!r} appears twice")
        if symbol not in SPECIAL_SYMBOLS:
            symbols.append(symbol)
    if MASK_SYMBOL not in symbols:  # the masked-LM task adds it unless the file already has it
        symbols.append(MASK_SYMBOL)
    return symbols


def dictionary_tokenizer(symbols: list[str]):
    """A ``tokenizers.Tokenizer`` that encodes like fairseq's ``Dictionary.encode_line``.

    fairseq looks up whitespace-separated symbols (sapiens writes a chain as ``"E V Q L ..."``);
    the template adds ``<s> ... </s>``. Saved as ``tokenizer.json`` by ``minirob convert``, so the
    converted model ships with its vocabulary. (A BPE-level fairseq dictionary, like roberta-base's,
    holds GPT-2 token ids as symbols: encode text with the GPT-2 BPE first.)
    """
    # lazy: the Rust tokenizers library is loaded only when a dict.txt becomes a tokenizer
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, processors

    backend = Tokenizer(
        models.WordLevel({symbol: i for i, symbol in enumerate(symbols)}, unk_token="<unk>")
    )
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    specials = [s for s in (*SPECIAL_SYMBOLS, MASK_SYMBOL) if s in symbols]
    backend.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    bos, eos = symbols.index("<s>"), symbols.index("</s>")
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    return backend


# --------------------------------------------------------------------------------------- names
def _normalise_legacy(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Legacy fairseq names -> current ones; packed ``in_proj_*`` (3H, ...) -> q, k, v."""
    out: dict[str, Tensor] = {}
    for name, tensor in state.items():
        if name.startswith("decoder."):
            name = "encoder." + name[len("decoder."):]
        name = name.replace(".emb_layer_norm.", ".layernorm_embedding.")
        packed = re.match(r"^(.*\.self_attn)\.in_proj_(weight|bias)$", name)
        if packed:
            prefix, param = packed.groups()
            if tensor.shape[0] % 3:
                raise CheckpointError(
                    f"{printable(name)} has shape {tuple(tensor.shape)}; a packed q/k/v projection needs a "
                    "first dimension divisible by 3"
                )
            for part, chunk in zip("qkv", tensor.chunk(3, dim=0)):  # fairseq packs q, then k, v
                out[f"{prefix}.{part}_proj.{param}"] = chunk
            continue
        out[name] = tensor
    return out


def fairseq_to_hf(state: dict[str, Tensor], head: str | None = None) -> tuple[dict, list[str]]:
    """Rename a fairseq RoBERTa state dict to transformers' names.

    ``head`` picks one of ``classification_heads.NAME`` (the only one is picked by default).
    Returns (HF-named tensors, names of the classification heads found).
    """
    state = _normalise_legacy(state)
    rules = compile_table(FAIRSEQ_TABLE)
    heads = sorted({n.split(".")[1] for n in state if n.startswith("classification_heads.")})
    if head is None and len(heads) == 1:
        head = heads[0]
    elif head is not None and head not in heads:
        raise CheckpointError(
            f"no classification head {head!r} in the checkpoint (it has: {name_list(heads) or 'none'})"
        )
    elif head is None and len(heads) > 1:
        logger.warning(
            "fairseq checkpoint has classification heads %s; none loaded (pick one with "
            "minirob.fairseq.load_fairseq(path, head=NAME))", name_list(heads)
        )
    hf: dict[str, Tensor] = {}
    unknown: list[str] = []
    for name, tensor in state.items():
        if IGNORED.search(name):
            continue
        if name.startswith("classification_heads."):
            _, owner, rest = name.split(".", 2)
            if owner == head:  # dense / out_proj keep their names under HF's `classifier.`
                hf["classifier." + rest] = tensor
            continue
        if name == "encoder.lm_head.weight":
            continue  # the decoder matrix, tied to embed_tokens; checked in _check_tied
        target = rename(name, rules)
        if target is None:
            unknown.append(name)
        else:
            hf[target] = tensor
    _check_tied(state)
    if "roberta.embeddings.word_embeddings.weight" not in hf:
        raise CheckpointError(
            "not a fairseq RoBERTa checkpoint: no encoder.sentence_encoder.embed_tokens weight "
            f"(first keys: {name_list(list(state)[:3])})"
        )
    if unknown:
        raise CheckpointError(
            f"fairseq checkpoint has weights minirob has no place for: {name_list(unknown)}"
        )
    words = required_tensor(hf, "roberta.embeddings.word_embeddings.weight", "")  # (V, H)
    # fairseq RoBERTa has no token types; transformers' RoBERTa has one, all zeros (as its converter)
    hf["roberta.embeddings.token_type_embeddings.weight"] = torch.zeros(1, words.shape[1])
    if "lm_head.bias" in hf:  # transformers names the tied decoder too; its converter fills both
        hf["lm_head.decoder.weight"] = words
        hf["lm_head.decoder.bias"] = hf["lm_head.bias"]
    return hf, heads


def _check_tied(state: dict[str, Tensor]) -> None:
    decoder = state.get("encoder.lm_head.weight")
    words = state.get("encoder.sentence_encoder.embed_tokens.weight")
    if decoder is None or words is None or words.dim() != 2:
        return  # absent or misshapen: refused by name when the config is read
    if decoder.shape != words.shape or not torch.equal(decoder, words):
        raise CheckpointError(
            "encoder.lm_head.weight differs from the word embeddings (trained with "
            "--untie-weights-roberta?); minirob and transformers tie the MLM decoder to them"
        )


# ------------------------------------------------------------------------------- architecture
def _model_args(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """The training arguments as a dict, from ``args`` (Namespace) or ``cfg["model"]``."""
    args = raw.get("args")
    if isinstance(args, argparse.Namespace):
        return vars(args)
    cfg = unwrap(raw.get("cfg"))
    if isinstance(cfg, dict):
        model = unwrap(cfg.get("model"))
        if isinstance(model, argparse.Namespace):
            return vars(model)
        if isinstance(model, dict):
            return model
    raise CheckpointError(
        f"{path}: no training arguments found (neither 'args' nor 'cfg.model'); cannot tell the "
        "number of attention heads. Pass config=RobertaConfig(...) to describe the model"
    )


def config_from_args(args: dict[str, Any], state: dict[str, Tensor], source: str) -> RobertaConfig:
    """Build the config from the fairseq arguments and check it against the weights' shapes."""
    for flag, meaning in (("encoder_normalize_before", "pre-LN layers"),
                          ("untie_weights_roberta", "an untied MLM decoder")):
        if args.get(flag):
            raise ConfigError(f"{source}: args.{flag}=True ({meaning}) is not supported by minirob")
    arch = args.get("arch")
    defaults = dict(zip(ARGS_FIELDS, ARCH_DEFAULTS.get(arch, (None,) * 4)))
    values = {name: typed_arg(args, name, int, defaults[name], source) for name in ARGS_FIELDS}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ConfigError(
            f"{source}: args lack {', '.join(missing)} and arch={arch!r:.60} is not one of "
            f"{', '.join(ARCH_DEFAULTS)}; pass config=RobertaConfig(...)"
        )
    activation = typed_arg(args, "activation_fn", str, "gelu", source)
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"{source}: args.activation_fn={activation!r:.60} is not one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    words = required_tensor(state, "roberta.embeddings.word_embeddings.weight", source)  # (V, H)
    positions = required_tensor(state, "roberta.embeddings.position_embeddings.weight", source)
    head = state.get("classifier.out_proj.weight")  # (labels, H)
    try:
        config = RobertaConfig(
            vocab_size=words.shape[0],
            hidden_size=values["encoder_embed_dim"],
            num_hidden_layers=values["encoder_layers"],
            num_attention_heads=values["encoder_attention_heads"],
            intermediate_size=values["encoder_ffn_embed_dim"],
            hidden_act=ACTIVATIONS[activation],
            hidden_dropout_prob=typed_arg(args, "dropout", float, 0.1, source),
            attention_probs_dropout_prob=typed_arg(args, "attention_dropout", float, 0.1, source),
            max_position_embeddings=positions.shape[0],  # max_positions + 2 rows
            type_vocab_size=1,
            layer_norm_eps=1e-5,  # torch.nn.LayerNorm's default, which fairseq uses
            pad_token_id=1, bos_token_id=0, eos_token_id=2,  # fairseq Dictionary's fixed ids
            position_style="roberta",
            model_type="roberta",
            num_labels=head.shape[0] if head is not None else 2,
        )
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    _check_shapes(config, args, state, source)
    return config


# Python types a fairseq argument may have, and how an error message names them.
_KINDS = {int: ((int,), "an integer"), float: ((int, float), "a number"), str: ((str,), "a string")}


def typed_arg(args: dict[str, Any], name: str, kind: type, default: Any, source: str) -> Any:
    """``args[name]`` if it has the expected type (absent: ``default``); else a ConfigError.

    The args come from a pickle anyone can write: ``dropout=[0.1]`` or ``max_positions='144'``
    must be refused here, by name, not fail later inside torch or arithmetic.
    """
    value = args.get(name, default)
    types, described = _KINDS[kind]
    if value is None or (isinstance(value, types) and not isinstance(value, bool)):
        return kind(value) if value is not None else None
    raise ConfigError(f"{source}: args.{name} must be {described}, got {value!r:.60} "
                      f"({type(value).__name__})")


def required_tensor(state: dict[str, Tensor], hf_name: str, source: str, rank: int = 2) -> Tensor:
    """A tensor the config is read from, present and of the expected rank, named in fairseq terms."""
    tensor = state.get(hf_name)
    fairseq_name = next((f"{src}.{hf_name.rsplit('.', 1)[1]}" for src, dst in FAIRSEQ_TABLE
                         if hf_name.rsplit(".", 1)[0] == dst), hf_name)
    where = f"{source}: " if source else ""  # without a source, the caller adds the file
    if tensor is None:
        raise CheckpointError(f"{where}the weights have no {fairseq_name}")
    if tensor.dim() != rank:
        raise CheckpointError(f"{where}{fairseq_name} has shape {tuple(tensor.shape)}; "
                              f"expected {rank} dimensions")
    return tensor


def _check_shapes(config: RobertaConfig, args: dict, state: dict[str, Tensor], source: str):
    """The args describe the model; the tensors are the model. Refuse if they disagree."""
    hidden = config.hidden_size
    words = state["roberta.embeddings.word_embeddings.weight"]
    if words.shape[1] != hidden:
        raise ConfigError(
            f"{source}: args.encoder_embed_dim={hidden}, but the word embeddings have shape "
            f"{tuple(words.shape)}"
        )
    layers = {int(m.group(1)) for n in state if (m := re.match(r"roberta\.encoder\.layer\.(\d+)\.", n))}
    if layers != set(range(config.num_hidden_layers)):
        raise ConfigError(
            f"{source}: args.encoder_layers={config.num_hidden_layers}, but the weights hold "
            f"layers {sorted(layers)[:3]}...{sorted(layers)[-1:]} ({len(layers)} layers)"
        )
    for i in sorted(layers):  # every module of every layer, named as fairseq names it
        for source_module, hf_module in FAIRSEQ_TABLE:
            if "{i}" in hf_module:
                hf_name = hf_module.replace("{i}", str(i)) + ".weight"
                if hf_name not in state:
                    missing = source_module.replace("{i}", str(i)) + ".weight"
                    raise CheckpointError(f"{source}: the weights have no {missing} "
                                          f"(layer {i} of {config.num_hidden_layers} is incomplete)")
    up = required_tensor(state, "roberta.encoder.layer.0.intermediate.dense.weight", source)
    if tuple(up.shape) != (config.intermediate_size, hidden):
        raise ConfigError(
            f"{source}: args.encoder_ffn_embed_dim={config.intermediate_size}, but "
            f"layer 0 fc1.weight has shape {tuple(up.shape)}"
        )
    max_positions = typed_arg(args, "max_positions", int, None, source)
    if max_positions is not None and max_positions + 2 != config.max_position_embeddings:
        raise ConfigError(
            f"{source}: args.max_positions={max_positions} needs {max_positions + 2} position "
            f"rows (pad + 1 offset), but embed_positions has {config.max_position_embeddings}"
        )


# ------------------------------------------------------------------------------------ entry
def _checkpoint_file(path: Path) -> Path:
    if path.is_file():
        return path
    candidates = sorted(path.glob("*.pt"))
    for preferred in ("model.pt", "checkpoint_best.pt", "checkpoint_last.pt"):
        if path / preferred in candidates:
            return path / preferred
    if len(candidates) == 1:
        return candidates[0]
    raise CheckpointError(
        f"{path}: holds {len(candidates)} .pt files ({', '.join(c.name for c in candidates)}); "
        "name the one to load"
    )


def load_fairseq(path: str | os.PathLike, head: str | None = None) -> FairseqCheckpoint:
    """Read a fairseq RoBERTa checkpoint (file, or directory with one) and its ``dict.txt``."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no fairseq checkpoint at {path}")
    file = _checkpoint_file(path)
    raw = safe_torch_load(file)
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        found = f"keys {list(raw)[:5]}" if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(
            f"{file}: not a fairseq checkpoint (expected a dict with a 'model' state dict, "
            f"found {found})"
        )
    weights = raw["model"]
    bad = [name for name, value in weights.items() if not isinstance(value, Tensor)]
    if bad:
        raise CheckpointError(f"{file}: 'model' entry {bad[0]!r} is not a tensor")
    try:
        state, heads = fairseq_to_hf(weights, head)
    except CheckpointError as error:
        raise CheckpointError(f"{file}: {error}") from None
    config = config_from_args(_model_args(raw, file), state, str(file))
    symbols = None
    dictionary = file.parent / "dict.txt"
    if dictionary.exists():
        symbols = read_dictionary(dictionary)
        if len(symbols) != config.vocab_size:
            raise CheckpointError(
                f"{dictionary}: gives {len(symbols)} symbols (4 specials + file + <mask>), but "
                f"{file.name}'s word embeddings have {config.vocab_size} rows"
            )
    return FairseqCheckpoint(config=config, state=state, symbols=symbols, heads=heads)


def read_fairseq_checkpoint(path: str | os.PathLike) -> tuple[RobertaConfig, dict[str, Tensor]]:
    """fairseq ``model.pt`` -> (RobertaConfig, weights under transformers' RoBERTa names)."""
    checkpoint = load_fairseq(path)
    return checkpoint.config, checkpoint.state
