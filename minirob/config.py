"""RobertaConfig: every number that fixes a model's shape and behaviour, in one dataclass.

Field names follow Hugging Face's ``config.json`` so a config round-trips through the files
transformers writes and reads. Two switches let the same model code run BERT-family checkpoints:
``position_style`` ("roberta": positions start after the padding index; "absolute": BERT's 0..T-1)
and ``type_vocab_size`` (1 for RoBERTa, 2 for BERT's sentence A/B embeddings).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, MissingFileError

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
POSITION_STYLES = ("roberta", "absolute")
ATTENTION_BACKENDS = ("fused", "manual")
CLASSIFIER_POOLINGS = ("first", "mean")

# Fields that exist only in minirob and are never written to an HF config.json.
_MINIROB_ONLY = ("attention_backend",)


@dataclass
class RobertaConfig:
    vocab_size: int = 50265
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"  # exact (erf) GELU, as in RoBERTa and BERT
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 514  # 512 tokens + padding_idx + 1 (RoBERTa's offset)
    type_vocab_size: int = 1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2
    classifier_dropout: float | None = None  # None: use hidden_dropout_prob
    position_style: str = "roberta"
    model_type: str = "roberta"
    num_labels: int = 2
    id2label: dict[int, str] | None = None
    # "fused" runs torch.nn.functional.scaled_dot_product_attention; "manual" runs the
    # written-out softmax(QK^T / sqrt(d)) V from attention.py. Same numbers, different speed.
    attention_backend: str = "fused"
    # What the sequence-classification head reads: "first" = the <s> token (RoBERTa, BERT and
    # transformers); "mean" = the average over real tokens (what sentence-embedding models such as
    # all-MiniLM-L6-v2 were trained to produce). Written to config.json only when "mean"
    # (transformers ignores the key and would read <s>).
    classifier_pooling: str = "first"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # unknown HF keys, kept

    def __post_init__(self) -> None:
        self.validate()

    # ----------------------------------------------------------------- presets
    @classmethod
    def tiny(cls, **overrides: Any) -> "RobertaConfig":
        """A small model that pretrains on a laptop CPU in minutes (4 layers, width 256)."""
        values = dict(
            vocab_size=8192,
            hidden_size=256,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=1024,
            max_position_embeddings=130,  # 128 tokens + 2
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def base(cls, **overrides: Any) -> "RobertaConfig":
        """roberta-base: 12 layers, width 768, 12 heads, 124.7M parameters with the MLM head."""
        return cls(**overrides)

    @classmethod
    def large(cls, **overrides: Any) -> "RobertaConfig":
        """roberta-large: 24 layers, width 1024, 16 heads."""
        values = dict(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096
        )
        values.update(overrides)
        return cls(**values)

    # -------------------------------------------------------------- derived
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def max_sequence_length(self) -> int:
        """Longest input the position table can address."""
        if self.position_style == "roberta":
            return self.max_position_embeddings - self.pad_token_id - 1
        return self.max_position_embeddings

    def validate(self) -> None:
        positive = (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
            "num_labels",  # else torch fails later with "negative dimension" in a head
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"config.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"config.hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )
        for name, allowed in (
            ("hidden_act", ACTIVATIONS),
            ("position_style", POSITION_STYLES),
            ("attention_backend", ATTENTION_BACKENDS),
            ("classifier_pooling", CLASSIFIER_POOLINGS),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"config.{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}"
                )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"config.{name} must be in [0, 1), got {value!r}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"config.pad_token_id={self.pad_token_id} is outside the vocabulary "
                f"(vocab_size={self.vocab_size})"
            )
        if self.position_style == "roberta" and self.max_sequence_length < 1:
            raise ConfigError(
                f"config.max_position_embeddings={self.max_position_embeddings} leaves no room "
                f"for tokens after RoBERTa's offset (pad_token_id + 1 = {self.pad_token_id + 1})"
            )

    # ----------------------------------------------------- HF config.json I/O
    def to_hf_dict(self, architectures: list[str] | None = None) -> dict[str, Any]:
        """The dict transformers expects in ``config.json``."""
        values = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in _MINIROB_ONLY and f.name != "extra"
        }
        values.pop("position_style")
        if values["classifier_pooling"] == "first":
            values.pop("classifier_pooling")  # the default: config.json stays exactly HF's
        values["position_embedding_type"] = "absolute"  # both styles are learned absolute tables
        values.update(self.extra)
        if self.id2label is not None:
            values["id2label"] = {str(k): v for k, v in self.id2label.items()}
            values["label2id"] = {v: int(k) for k, v in self.id2label.items()}
        else:
            values.pop("id2label")
        values["layer_norm_eps"] = self.layer_norm_eps
        if architectures:
            values["architectures"] = architectures
        return values

    @classmethod
    def from_hf_dict(cls, values: dict[str, Any], source: str = "config") -> "RobertaConfig":
        """Build a config from a transformers ``config.json`` dict (RoBERTa or BERT family)."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(values).__name__}")
        model_type = values.get("model_type", "roberta")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "position_style"}
        kwargs: dict[str, Any] = {k: values[k] for k in known if k in values}
        if model_type in ("roberta", "xlm-roberta", "camembert"):
            kwargs["position_style"] = "roberta"
        elif model_type == "bert":
            kwargs["position_style"] = "absolute"
            kwargs.setdefault("pad_token_id", 0)
            kwargs.setdefault("layer_norm_eps", 1e-12)
            kwargs.setdefault("type_vocab_size", 2)
            kwargs.setdefault("max_position_embeddings", 512)
        else:
            raise ConfigError(
                f"{source}: model_type={model_type!r} is not a RoBERTa or BERT encoder; "
                "minirob reads model_type 'roberta' or 'bert'"
            )
        if values.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError(
                f"{source}: position_embedding_type={values['position_embedding_type']!r} "
                "is not supported (only 'absolute')"
            )
        if "id2label" in values and values["id2label"]:
            try:
                kwargs["id2label"] = {int(k): v for k, v in values["id2label"].items()}
            except (AttributeError, ValueError):
                raise ConfigError(
                    f"{source}: id2label must map label ids to names, got {values['id2label']!r:.80}"
                ) from None
            kwargs.setdefault("num_labels", len(kwargs["id2label"]))
        ignored = {
            "architectures", "label2id", "transformers_version", "torch_dtype", "dtype",
            "position_embedding_type", "use_cache", "gradient_checkpointing",
        }
        kwargs["extra"] = {
            k: v for k, v in values.items() if k not in known and k not in ignored
            and k != "model_type" and isinstance(v, (str, int, float, bool, type(None)))
        }
        try:
            return cls(**kwargs)
        except (TypeError, ConfigError) as error:  # a wrong JSON type, or a value the checks refuse
            raise ConfigError(f"{source}: {error}") from None

    def save(self, path: str | os.PathLike, architectures: list[str] | None = None) -> None:
        Path(path).write_text(json.dumps(self.to_hf_dict(architectures), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RobertaConfig":
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.exists():
            raise MissingFileError(f"no config file at {path}")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not UTF-8 text ({error})") from None
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from None
        return cls.from_hf_dict(values, source=str(path))
