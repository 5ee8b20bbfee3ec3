"""Checkpoint names: the tables that translate transformers' and fairseq's weight names to minirob's.

Every checkpoint minirob reads is first brought to transformers' names (fairseq through
``FAIRSEQ_TABLE``), then to minirob's (``BACKBONE_TABLE`` and ``HEAD_TABLES``); saving runs the
same tables backwards. A table row is ``(their module, our module)``; the parameter suffix
(``.weight`` / ``.bias``) is carried over unchanged and ``{i}`` is a layer number.

This module holds names only: no files, no model classes. Readers (``weights``, ``fairseq``) and
the model's ``from_pretrained`` base (``pretrained``) all import it, and it imports none of them.
"""

from __future__ import annotations

import re
from typing import Iterable

from torch import Tensor

from .errors import printable  # every name read from a file goes through it

# Hugging Face module (inside `roberta.` / `bert.`)   ->   minirob module (inside `roberta.`)
BACKBONE_TABLE = [
    ("embeddings.word_embeddings",                  "embeddings.token"),
    ("embeddings.position_embeddings",              "embeddings.position"),
    ("embeddings.token_type_embeddings",            "embeddings.token_type"),
    ("embeddings.LayerNorm",                        "embeddings.norm"),
    ("encoder.layer.{i}.attention.self.query",      "encoder.layers.{i}.attention.query"),
    ("encoder.layer.{i}.attention.self.key",        "encoder.layers.{i}.attention.key"),
    ("encoder.layer.{i}.attention.self.value",      "encoder.layers.{i}.attention.value"),
    ("encoder.layer.{i}.attention.output.dense",    "encoder.layers.{i}.attention.output"),
    ("encoder.layer.{i}.attention.output.LayerNorm", "encoder.layers.{i}.attention_norm"),
    ("encoder.layer.{i}.intermediate.dense",        "encoder.layers.{i}.feed_forward.up"),
    ("encoder.layer.{i}.output.dense",              "encoder.layers.{i}.feed_forward.down"),
    ("encoder.layer.{i}.output.LayerNorm",          "encoder.layers.{i}.output_norm"),
    ("pooler.dense",                                "pooler.dense"),
]

# The heads, full names, per (family, the model's ``checkpoint_head``). Saving uses the first row
# that names a minirob module; later rows for the same module are other spellings that loading
# also accepts.
_ROBERTA_MLM = [
    ("lm_head.dense",                               "lm_head.dense"),
    ("lm_head.layer_norm",                          "lm_head.norm"),
    ("lm_head",                                     "lm_head"),  # lm_head.bias
]
_BERT_MLM = [
    ("cls.predictions.transform.dense",             "lm_head.dense"),
    ("cls.predictions.transform.LayerNorm",         "lm_head.norm"),
    ("cls.predictions",                             "lm_head"),  # cls.predictions.bias
]
# RoBERTa's head: dense -> tanh -> out_proj on <s>. BERT's is the same function split in two
# modules: the pooler (dense -> tanh on [CLS]) and a Linear `classifier`.
_ROBERTA_SEQUENCE = [
    ("classifier.dense",                            "classifier.dense"),
    ("classifier.out_proj",                         "classifier.out_proj"),
]
_BERT_SEQUENCE = [
    ("bert.pooler.dense",                           "classifier.dense"),
    ("classifier",                                  "classifier.out_proj"),
    ("pooler.dense",                                "classifier.dense"),  # a BertModel without prefix
    *_ROBERTA_SEQUENCE,  # BERT-family files minirob wrote before, and mean-pooling heads
]
_TOKEN = [("classifier", "classifier")]

HEAD_TABLES = {
    ("roberta", "encoder"): [],
    ("roberta", "mlm"): _ROBERTA_MLM,
    ("roberta", "sequence-classification"): _ROBERTA_SEQUENCE,
    ("roberta", "token-classification"): _TOKEN,
    ("bert", "encoder"): [],
    ("bert", "mlm"): _BERT_MLM,
    ("bert", "sequence-classification"): _BERT_SEQUENCE,
    ("bert", "token-classification"): _TOKEN,
}
# Mean pooling has no place in transformers' BERT classes (their pooler reads [CLS]): such a head
# is saved under minirob's own names, so transformers reports it instead of running it wrongly.
# A BERT pooler still gives its dense layer a trained start when a new head is built.
MEAN_POOLING_HEAD = [
    *_ROBERTA_SEQUENCE,
    ("bert.pooler.dense",                           "classifier.dense"),
    ("pooler.dense",                                "classifier.dense"),
]
# Every head of a family at once, for callers that do not say which model the weights are for.
ANY_HEAD = {
    "roberta": _ROBERTA_MLM + _ROBERTA_SEQUENCE + _TOKEN,
    "bert": _BERT_MLM + _ROBERTA_SEQUENCE + _TOKEN,
}

# Present in checkpoints but carrying nothing we need: buffers, and copies of tied weights
# (the MLM decoder *is* the word-embedding matrix; its bias is lm_head.bias). An untied decoder
# is refused by the reader before names are translated (weights.check_tied_decoder).
IGNORED = re.compile(
    r"(^|\.)position_ids$"
    r"|^lm_head\.decoder\.(weight|bias)$"
    r"|^cls\.predictions\.decoder\.(weight|bias)$"
    r"|^cls\.seq_relationship\."
)
DECODER_NAMES = ("lm_head.decoder.weight", "cls.predictions.decoder.weight")

BACKBONE_PREFIX = {"roberta": "roberta.", "bert": "bert."}
BACKBONE = "backbone:"  # marks a renamed encoder weight, before it is placed in a model

# fairseq module (after legacy names are normalised)         ->  transformers RobertaFor* module
_LAYER = "encoder.sentence_encoder.layers.{i}"
_HF_LAYER = "roberta.encoder.layer.{i}"
FAIRSEQ_TABLE = [
    ("encoder.sentence_encoder.embed_tokens",        "roberta.embeddings.word_embeddings"),
    ("encoder.sentence_encoder.embed_positions",     "roberta.embeddings.position_embeddings"),
    ("encoder.sentence_encoder.layernorm_embedding", "roberta.embeddings.LayerNorm"),
    (f"{_LAYER}.self_attn.q_proj",                    f"{_HF_LAYER}.attention.self.query"),
    (f"{_LAYER}.self_attn.k_proj",                    f"{_HF_LAYER}.attention.self.key"),
    (f"{_LAYER}.self_attn.v_proj",                    f"{_HF_LAYER}.attention.self.value"),
    (f"{_LAYER}.self_attn.out_proj",                  f"{_HF_LAYER}.attention.output.dense"),
    (f"{_LAYER}.self_attn_layer_norm",                f"{_HF_LAYER}.attention.output.LayerNorm"),
    (f"{_LAYER}.fc1",                                 f"{_HF_LAYER}.intermediate.dense"),
    (f"{_LAYER}.fc2",                                 f"{_HF_LAYER}.output.dense"),
    (f"{_LAYER}.final_layer_norm",                    f"{_HF_LAYER}.output.LayerNorm"),
    ("encoder.lm_head.dense",                        "lm_head.dense"),
    ("encoder.lm_head.layer_norm",                   "lm_head.layer_norm"),
    ("encoder.lm_head",                              "lm_head"),  # .bias; .weight is checked apart
]

Rules = list[tuple[re.Pattern, str]]


# ---------------------------------------------------------------------------- rename helpers
def compile_table(table: Iterable[tuple[str, str]]) -> Rules:
    """(module, target) rows -> (regex matching ``module[.{i}...].weight|bias``, target) rules."""
    rules = []
    for source, target in table:
        pattern = re.escape(source).replace(r"\{i\}", r"(\d+)") + r"\.(weight|bias)$"
        rules.append((re.compile("^" + pattern), target))
    return rules


def inverse(table: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The table read backwards for saving: the first spelling of each target wins."""
    seen: dict[str, str] = {}
    for source, target in table:
        seen.setdefault(target, source)
    return [(target, source) for target, source in seen.items()]


def rename(name: str, rules: Rules) -> str | None:
    """The first rule's target for ``name``, layer number and suffix filled in; None if none match."""
    for pattern, target in rules:
        match = pattern.fullmatch(name)  # fullmatch: a trailing newline is not a match
        if match:
            *layer, param = match.groups()
            return target.replace("{i}", layer[0]) + "." + param if layer else f"{target}.{param}"
    return None


def family(config) -> str:
    """Which set of transformers names a config's checkpoints use: "bert" or "roberta"."""
    return "bert" if config.model_type == "bert" else "roberta"


def name_list(names: Iterable[object], shown: int = 6) -> str:
    """Up to ``shown`` names from a file, each :func:`printable`, and how many more there are."""
    names = list(names)
    text = ", ".join(printable(n) for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


# ------------------------------------------------------------------- transformers <-> minirob
def head_table(config, head: str | None) -> list[tuple[str, str]]:
    """The head rows for a family and a model's ``checkpoint_head`` (None: every head)."""
    if head is None:
        return ANY_HEAD[family(config)]
    if (family(config), head, config.classifier_pooling) == \
            ("bert", "sequence-classification", "mean"):
        return MEAN_POOLING_HEAD
    return HEAD_TABLES[family(config), head]


def hf_to_minirob(
    state: dict[str, Tensor], config, head: str | None = None
) -> tuple[dict[str, Tensor], list[str]]:
    """HF names -> minirob names: encoder weights as ``backbone:NAME``, heads as in the task model.

    ``head`` is the receiving model's ``checkpoint_head`` ("encoder", "mlm",
    "sequence-classification", "token-classification"); it decides, for instance, whether BERT's
    ``classifier`` is a sequence head's ``out_proj`` or a token tagger. Head rows are tried before
    the encoder's, so BERT's pooler becomes a sequence head's dense layer. Returns the renamed
    tensors and the names that found no place (unknown, or a second spelling of a filled place).
    """
    prefix = BACKBONE_PREFIX[family(config)]
    backbone_rules = compile_table(BACKBONE_TABLE)
    head_rules = compile_table(head_table(config, head))
    renamed: dict[str, Tensor] = {}
    unplaced: list[str] = []
    for name, tensor in state.items():
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias"
        )
        if IGNORED.search(name):
            continue
        target = rename(name, head_rules)
        if target is None:
            inner = name[len(prefix):] if name.startswith(prefix) else name
            target = rename(inner, backbone_rules)
            target = target and BACKBONE + target
        if target is None or target in renamed:
            unplaced.append(name)
        else:
            renamed[target] = tensor
    return renamed, unplaced


def minirob_to_hf(model) -> dict[str, Tensor]:
    """A minirob model's weights under the names transformers' matching class uses.

    ``model`` needs ``config``, ``state_dict()`` and the class attribute ``checkpoint_head``;
    an encoder alone ("encoder") is saved without the ``roberta.``/``bert.`` prefix, as
    transformers' ``RobertaModel``/``BertModel`` save themselves.
    """
    config, head = model.config, model.checkpoint_head
    backbone = compile_table(inverse(BACKBONE_TABLE))
    heads = compile_table(inverse(head_table(config, head)))
    prefix = "" if head == "encoder" else BACKBONE_PREFIX[family(config)]
    out: dict[str, Tensor] = {}
    for name, tensor in model.state_dict().items():
        if head == "encoder":
            hf_name = rename(name, backbone)
        elif name.startswith("roberta."):
            hf_name = rename(name[len("roberta."):], backbone)
            hf_name = hf_name and prefix + hf_name
        else:
            hf_name = rename(name, heads)
        if hf_name is None:  # a bug in the tables, not a user error
            raise RuntimeError(f"no HF name for minirob weight {name!r}")
        out[hf_name] = tensor.detach().contiguous()
    return out
