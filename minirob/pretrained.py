"""The base of every minirob model: initialisation, ``from_pretrained`` and ``save_pretrained``.

Loading is three steps, each in the layer that owns it:

1. :func:`minirob.weights.read_checkpoint` reads any supported file (transformers, BERT, fairseq)
   into a config and tensors under transformers' names;
2. :func:`minirob.names.hf_to_minirob` renames them for the receiving model, whose class says which
   head it has (``checkpoint_head``), so BERT's ``classifier`` lands in the right place;
3. :func:`model_from_state`, here, builds the model, checks every shape, loads, and reports what
   was missing (a new head) or left over (a head this class has no place for).

This module knows the models only through those class attributes: it imports no model class, so
``model.py`` can import it without a circle.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .config import RobertaConfig
from .errors import CheckpointError
from .names import BACKBONE, family, hf_to_minirob, minirob_to_hf, name_list
from .weights import read_checkpoint, write_checkpoint

logger = logging.getLogger("minirob")


@dataclass
class LoadReport:
    """What happened when a checkpoint was loaded into a model."""

    source: str
    newly_initialised: list[str] = field(default_factory=list)  # model weights not in the file
    unused: list[str] = field(default_factory=list)  # file weights the model has no place for


class PreTrainedModel(nn.Module):
    """Shared by all minirob models: initialisation, from_pretrained, save_pretrained."""

    # The transformers class with the same weights (used in config.json "architectures").
    hf_architecture: str = ""
    # Which head the model carries, for the name tables: "encoder", "mlm",
    # "sequence-classification" or "token-classification".
    checkpoint_head: str = "encoder"

    def __init__(self, config: RobertaConfig):
        super().__init__()
        config.check_fits_in_memory()  # before any submodule allocates its parameters
        self.config = config

    def init_weights(self) -> None:
        """Initialise like the reference: N(0, 0.02) weights, zero biases, zero padding row.

        Modules are visited in creation order, so a seed gives the same weights every time.
        A module's own ``bias`` (the MLM head's output bias) starts at zero like any other.
        """
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
                if module.padding_idx is not None:
                    with torch.no_grad():
                        module.weight[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(getattr(module, "bias", None), nn.Parameter):
                nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, config: RobertaConfig | None = None, **overrides: Any
    ):
        """Load an HF directory/file, a fairseq ``model.pt`` or a BERT-family checkpoint.

        ``overrides`` change config fields, e.g. ``num_labels=3`` or ``attention_backend="manual"``.
        Weights the checkpoint lacks but this class needs (a new task head) are initialised and
        listed in ``model.load_report``.
        """
        config, hf_state = read_checkpoint(path, config)
        return model_from_state(cls, config, hf_state, path, **overrides)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` + ``model.safetensors`` in the transformers layout, atomically."""
        write_checkpoint(directory, self.config, minirob_to_hf(self), self.hf_class_name())

    def hf_class_name(self) -> str:
        """The transformers class that loads what ``save_pretrained`` writes.

        A BERT-family classifier that averages tokens has no transformers class (BERT's pooler
        reads [CLS]): it gets a name no library claims, so nothing runs it as the wrong function.
        """
        if family(self.config) == "roberta":
            return self.hf_architecture
        name = self.hf_architecture.replace("Roberta", "Bert")
        if self.checkpoint_head == "sequence-classification" and \
                self.config.classifier_pooling == "mean":
            return "MinirobMeanPooling" + name
        return name

    def num_parameters(self) -> int:
        """Parameters counted once each (the tied MLM decoder is the word embedding)."""
        return sum(p.numel() for p in self.parameters())


# ----------------------------------------------------------------------------------- loading
def model_from_state(
    cls, config: RobertaConfig, hf_state: dict[str, Tensor], path, **overrides: Any
):
    """Build ``cls`` from a checkpoint already read by :func:`read_checkpoint` (for callers that
    need the file's tensors too, without reading it twice)."""
    if overrides:
        config = dataclasses.replace(config, **overrides)
    renamed, unknown = hf_to_minirob(hf_state, config, cls.checkpoint_head)
    if BACKBONE + "embeddings.token.weight" not in renamed:  # e.g. GPT-2, or a ViT (BERT-like)
        found = sum(k.startswith(BACKBONE) for k in renamed)
        raise CheckpointError(
            f"{path}: no RoBERTa/BERT word-embedding table among its {len(hf_state)} weights "
            f"({found} have encoder-like names; first keys: {name_list(list(hf_state)[:3])}); "
            "is this another architecture?"
        )
    config.check_fits_in_memory(str(path))
    model = cls(config)
    placed = place_backbone(renamed, standalone=cls.checkpoint_head == "encoder")
    report = LoadReport(source=str(path), unused=list(unknown))
    loaded = fitting_weights(model.state_dict(), placed, report, path, config)
    missing = [name for name in model.state_dict() if name not in loaded]
    check_encoder_complete(missing, cls.checkpoint_head == "encoder", path)
    model.load_state_dict(loaded, strict=False)
    report.newly_initialised = missing
    if missing:
        logger.warning(
            "%s: newly initialised (not in the checkpoint, train before use): %s",
            cls.__name__, ", ".join(missing),
        )
    model.load_report = report
    return model


def place_backbone(renamed: dict[str, Tensor], standalone: bool) -> dict[str, Tensor]:
    """``backbone:NAME`` -> ``NAME`` in an encoder alone, ``roberta.NAME`` inside a task model."""
    prefix = "" if standalone else "roberta."
    return {
        (prefix + name[len(BACKBONE):] if name.startswith(BACKBONE) else name): tensor
        for name, tensor in renamed.items()
    }


def fitting_weights(expected: dict[str, Tensor], placed: dict[str, Tensor], report: LoadReport,
                    path, config: RobertaConfig) -> dict[str, Tensor]:
    """The tensors the model has a place for, each checked against the place's shape."""
    loaded: dict[str, Tensor] = {}
    for name, tensor in placed.items():
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
    return loaded


def check_encoder_complete(missing: list[str], standalone: bool, path) -> None:
    """A new head may start from scratch; a missing encoder weight means a broken checkpoint."""
    encoder_missing = [
        n for n in missing
        if (n.startswith("roberta.") or standalone) and ".pooler." not in f".{n}"
    ]
    if encoder_missing:
        raise CheckpointError(
            f"{path}: encoder weights missing from the checkpoint: {name_list(encoder_missing, shown=8)}"
        )
