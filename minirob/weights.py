"""Reading and writing checkpoints: the name mapping between transformers and minirob.

The whole mapping is the two tables below. Names are module paths; the parameter suffix
(``.weight`` / ``.bias``) is carried over unchanged. ``{i}`` is a layer number.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .config import RobertaConfig
from .errors import CheckpointError, MissingFileError, UnsafeCheckpointError

logger = logging.getLogger("minirob")

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

# Task heads, full names. RoBERTa first, then BERT's names for the same MLM head.
HEAD_TABLE = {
    "roberta": [
        ("lm_head.dense",                           "lm_head.dense"),
        ("lm_head.layer_norm",                      "lm_head.norm"),
        ("lm_head",                                 "lm_head"),  # lm_head.bias
        ("classifier.dense",                        "classifier.dense"),
        ("classifier.out_proj",                     "classifier.out_proj"),
        ("classifier",                              "classifier"),  # token classification
    ],
    "bert": [
        ("cls.predictions.transform.dense",         "lm_head.dense"),
        ("cls.predictions.transform.LayerNorm",     "lm_head.norm"),
        ("cls.predictions",                         "lm_head"),  # cls.predictions.bias
        ("classifier.dense",                        "classifier.dense"),
        ("classifier.out_proj",                     "classifier.out_proj"),
        ("classifier",                              "classifier"),
    ],
}

# Present in checkpoints but carrying nothing we need: buffers, and copies of tied weights
# (the MLM decoder *is* the word-embedding matrix; its bias is lm_head.bias).
IGNORED = re.compile(
    r"(^|\.)position_ids$"
    r"|^lm_head\.decoder\.(weight|bias)$"
    r"|^cls\.predictions\.decoder\.(weight|bias)$"
    r"|^cls\.seq_relationship\."
)

BACKBONE_PREFIX = {"roberta": "roberta.", "bert": "bert."}


def _pattern(module: str) -> re.Pattern:
    return re.compile("^" + re.escape(module).replace(r"\{i\}", r"(\d+)") + r"\.(weight|bias)$")


def _compile(table):
    return [(_pattern(src), dst) for src, dst in table]


def _rename(name: str, rules) -> str | None:
    for pattern, target in rules:
        match = pattern.match(name)
        if match:
            *layer, param = match.groups()
            return target.replace("{i}", layer[0]) + "." + param if layer else f"{target}.{param}"
    return None


def _family(config: RobertaConfig) -> str:
    return "bert" if config.model_type == "bert" else "roberta"


@dataclass
class LoadReport:
    """What happened when a checkpoint was loaded into a model."""

    source: str
    newly_initialised: list[str] = field(default_factory=list)  # model weights not in the file
    unused: list[str] = field(default_factory=list)  # file weights the model has no place for


def hf_to_minirob(state: dict[str, Tensor], config: RobertaConfig) -> tuple[dict, list[str]]:
    """HF names -> minirob names (backbone without prefix, heads as in the task models).

    Returns the renamed tensors and the names that matched nothing in the tables.
    """
    family = _family(config)
    backbone_rules = _compile(BACKBONE_TABLE)
    head_rules = _compile(HEAD_TABLE[family])
    prefix = BACKBONE_PREFIX[family]
    renamed: dict[str, Tensor] = {}
    unknown: list[str] = []
    for name, tensor in state.items():
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias"
        )
        if IGNORED.search(name):
            continue
        inner = name[len(prefix):] if name.startswith(prefix) else name
        target = _rename(inner, backbone_rules)
        if target is not None:
            target = "backbone:" + target
        else:
            target = _rename(name, head_rules)
        if target is None:
            unknown.append(name)
        else:
            renamed[target] = tensor
    return renamed, unknown


def minirob_to_hf(model) -> dict[str, Tensor]:
    """A minirob model's weights under the names transformers' matching class uses."""
    from .model import RobertaModel

    family = _family(model.config)
    inverse_backbone = _compile([(dst, src) for src, dst in BACKBONE_TABLE])
    inverse_heads = _compile([(dst, src) for src, dst in HEAD_TABLE[family]])
    standalone = isinstance(model, RobertaModel)
    out: dict[str, Tensor] = {}
    for name, tensor in model.state_dict().items():
        if standalone:
            hf_name = _rename(name, inverse_backbone)
        elif name.startswith("roberta."):
            hf_name = BACKBONE_PREFIX[family] + _rename(name[len("roberta."):], inverse_backbone)
        else:
            hf_name = _rename(name, inverse_heads)
        if hf_name is None:  # a bug in the tables, not a user error
            raise RuntimeError(f"no HF name for minirob weight {name!r}")
        out[hf_name] = tensor.detach().contiguous()
    return out


# ------------------------------------------------------------------------------ file reading
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


CHECKSUM_KEY = "minirob_sha256"  # safetensors metadata entry written by save_pretrained


def weights_digest(state: dict[str, Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a .safetensors or .bin file; corrupted files become CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no checkpoint file at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                state = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception as error:  # safetensors raises its own SafetensorError
            raise CheckpointError(f"{path}: not a valid safetensors file ({error})") from None
        # safetensors has no checksum of its own; files minirob wrote carry one in the metadata.
        if CHECKSUM_KEY in metadata and metadata[CHECKSUM_KEY] != weights_digest(state):
            raise CheckpointError(
                f"{path}: the weights no longer match the sha256 written when the file was saved; "
                "the file is corrupted (bad copy or disk?)"
            )
        return state
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic != b"PK" and magic[:1] != b"\x80":  # neither torch's zip format nor a pickle
        raise CheckpointError(
            f"{path}: not a weights file (not safetensors, not a PyTorch zip or pickle: it starts "
            f"with {magic!r}); give the directory holding config.json and the weights"
        )
    from .safe_pickle import check_zip_crc

    check_zip_crc(path)  # torch.load alone would not notice a flipped bit in the tensor bytes
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        culprit = next((line for line in lines if "GLOBAL" in line), None)
        culprit = culprit and culprit.split(". Please use")[0].rstrip(".") + "."  # not the bypass
        if culprit:  # torch names what the pickle wanted to import; nothing was imported or run
            raise UnsafeCheckpointError(
                f"{path}: refused, the pickle asks for code: {culprit} minirob reads .bin files "
                "with weights_only=True; see README 'Reliability and untrusted checkpoints'."
            ) from None
        text = lines[0] if lines else type(error).__name__
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch weights file with weights_only=True ({text}). "
            "minirob never unpickles arbitrary objects; see README 'Reliability and untrusted "
            "checkpoints'."
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    return state


def _read_weights_in(directory: Path) -> dict[str, Tensor]:
    present = [directory / name for name in WEIGHT_FILES if (directory / name).exists()]
    if not present:
        raise MissingFileError(
            f"{directory}: no weights found (looked for {', '.join(WEIGHT_FILES)})"
        )
    states = [read_state_dict(p) for p in present]
    if len(states) == 2:
        first, second = states
        if first.keys() != second.keys() or any(
            first[k].shape != second[k].shape or not torch.equal(first[k], second[k]) for k in first
        ):
            raise CheckpointError(
                f"{directory}: {present[0].name} and {present[1].name} hold different weights; "
                "remove the stale one"
            )
    return states[0]


def _is_fairseq(path: Path) -> bool:
    if path.is_dir():
        return not any((path / n).exists() for n in WEIGHT_FILES) and any(path.glob("*.pt"))
    return path.suffix == ".pt"


def read_checkpoint(
    path: str | os.PathLike, config: RobertaConfig | None = None
) -> tuple[RobertaConfig, dict[str, Tensor]]:
    """Any supported checkpoint -> (config, weights under HF names)."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no checkpoint at {path}")
    if _is_fairseq(path):
        from .fairseq import read_fairseq_checkpoint  # fairseq -> HF names, config from its args

        fairseq_config, state = read_fairseq_checkpoint(path)
        return config or fairseq_config, state
    directory = path if path.is_dir() else path.parent
    state = _read_weights_in(path) if path.is_dir() else read_state_dict(path)
    if config is None:
        config_file = directory / "config.json"
        if not config_file.exists():
            raise MissingFileError(
                f"no config.json next to {path}; pass config=RobertaConfig(...) to describe it"
            )
        config = RobertaConfig.load(config_file)
    return config, state


def load_pretrained(cls, path, config: RobertaConfig | None = None, **overrides: Any):
    """Build ``cls`` from a checkpoint; see ``PreTrainedModel.from_pretrained``."""
    from .model import RobertaModel

    config, hf_state = read_checkpoint(path, config)
    if overrides:
        config = dataclasses.replace(config, **overrides)
    renamed, unknown = hf_to_minirob(hf_state, config)
    if "backbone:embeddings.token.weight" not in renamed:  # e.g. GPT-2, or a ViT (BERT-like layers)
        found = sum(k.startswith("backbone:") for k in renamed)
        raise CheckpointError(
            f"{path}: no RoBERTa/BERT word-embedding table among its {len(hf_state)} weights "
            f"({found} have encoder-like names; first keys: {', '.join(list(hf_state)[:3])}); "
            "is this another architecture?"
        )
    standalone = cls is RobertaModel
    model = cls(config)
    expected = model.state_dict()
    loaded: dict[str, Tensor] = {}
    report = LoadReport(source=str(path), unused=list(unknown))
    for name, tensor in renamed.items():
        if name.startswith("backbone:"):
            name = name[len("backbone:"):] if standalone else "roberta." + name[len("backbone:"):]
        if name not in expected:
            report.unused.append(name)
            continue
        want = tuple(expected[name].shape)
        if tuple(tensor.shape) != want:
            if name.startswith("classifier"):
                raise CheckpointError(
                    f"{path}: weight {name!r} has shape {tuple(tensor.shape)} but the model "
                    f"expects {want}: the checkpoint's head was trained for a different number "
                    f"of labels than num_labels={config.num_labels}"
                )
            raise CheckpointError(
                f"{path}: weight {name!r} has shape {tuple(tensor.shape)}, but the config "
                f"expects {want}"
            )
        loaded[name] = tensor
    missing = [name for name in expected if name not in loaded]
    encoder_missing = [
        n for n in missing
        if (n.startswith("roberta.") or standalone) and ".pooler." not in f".{n}"
    ]
    if encoder_missing:
        raise CheckpointError(
            f"{path}: encoder weights missing from the checkpoint: {', '.join(encoder_missing[:8])}"
            + (f" and {len(encoder_missing) - 8} more" if len(encoder_missing) > 8 else "")
        )
    model.load_state_dict(loaded, strict=False)
    report.newly_initialised = missing
    if missing:
        logger.warning(
            "%s: newly initialised (not in the checkpoint, train before use): %s",
            cls.__name__, ", ".join(missing),
        )
    model.load_report = report
    return model


def save_pretrained(model, directory: str | os.PathLike) -> None:
    """config.json + model.safetensors in transformers' layout, written atomically."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=directory))
    try:
        model.config.save(staging / "config.json", architectures=[_hf_class_name(model)])
        state = minirob_to_hf(model)
        metadata = {"format": "pt", CHECKSUM_KEY: weights_digest(state)}
        save_file(state, str(staging / "model.safetensors"), metadata=metadata)
        for name in ("config.json", "model.safetensors"):
            os.replace(staging / name, directory / name)  # atomic per file
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _hf_class_name(model) -> str:
    name = model.hf_architecture
    return name.replace("Roberta", "Bert") if _family(model.config) == "bert" else name
