"""RobertaConfig: every number that fixes a model's shape and behaviour, in one dataclass.

Field names follow Hugging Face's ``config.json`` so a config round-trips through the files
transformers writes and reads. Two switches let the same model code run BERT-family checkpoints:
``position_style`` ("roberta": positions start after the padding index; "absolute": BERT's 0..T-1)
and ``type_vocab_size`` (1 for RoBERTa, 2 for BERT's sentence A/B embeddings).
"""

from __future__ import annotations

import dataclasses
import json
import math
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

# Largest sizes a config may ask for. Real encoders stay far below (XLM-R: vocabulary 250,002;
# the widest BERTs: hidden 4,096, 48 layers); a file asking for more is damaged or hostile, and
# refusing it here costs one comparison where building it would hang or exhaust memory.
SIZE_LIMITS = {
    "vocab_size": 10_000_000,
    "hidden_size": 65_536,
    "num_hidden_layers": 1_000,
    "num_attention_heads": 65_536,
    "intermediate_size": 262_144,
    "max_position_embeddings": 1_048_576,
    "type_vocab_size": 1_024,
    "num_labels": 1_000_000,
}
# Fields that must be finite real numbers (a JSON string or NaN here breaks every forward pass).
_REAL_FIELDS = ("layer_norm_eps", "initializer_range", "hidden_dropout_prob",
                "attention_probs_dropout_prob")


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
        """The model ``minirob pretrain`` trains on a laptop CPU: 2 layers, width 128, 2 heads.

        The recipe search's pick for 10 minutes on 2 cores (benchmarks/pretrain_search.md): at this
        size a step is ~4x cheaper than at 4 x 256 and, at equal tokens, learns as fast. No dropout:
        a run of one or two epochs has no overfitting to fight, and dropout slows early learning.
        """
        values = dict(
            vocab_size=8192,
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=512,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            max_position_embeddings=130,  # 128 tokens + 2
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def small(cls, **overrides: Any) -> "RobertaConfig":
        """4 layers, width 256, 4 heads, dropout 0.1: the shape of the CPU speed benchmarks."""
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
        """Refuse a value the model could not be built or run with, naming the field.

        Sizes are checked against :data:`SIZE_LIMITS` (num_labels too: else torch fails later
        with "negative dimension" in a head), numbers for their type and range, before any
        module exists.
        """
        for name, limit in SIZE_LIMITS.items():
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise ConfigError(f"config.{name} must be a positive integer, got {value!r:.80}")
            if value > limit:
                raise ConfigError(
                    f"config.{name}={value} is above minirob's limit of {limit:,} (damaged file?)"
                )
        self._validate_numbers()
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
                    f"config.{name}={getattr(self, name)!r:.80} is not one of {', '.join(allowed)}"
                )
        if not _is_int(self.pad_token_id) or not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"config.pad_token_id={self.pad_token_id!r:.80} is not a token id of the "
                f"vocabulary (an integer in 0..{self.vocab_size - 1})"
            )
        if self.position_style == "roberta" and self.max_sequence_length < 1:
            raise ConfigError(
                f"config.max_position_embeddings={self.max_position_embeddings} leaves no room "
                f"for tokens after RoBERTa's offset (pad_token_id + 1 = {self.pad_token_id + 1})"
            )

    def _validate_numbers(self) -> None:
        """Real-valued fields: type, finiteness and range; optional token ids: integers."""
        for name in _REAL_FIELDS:
            value = getattr(self, name)
            if not _is_real(value):
                raise ConfigError(f"config.{name} must be a finite number, got {value!r:.80}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is not None and not (_is_real(value) and 0.0 <= value < 1.0):
                raise ConfigError(f"config.{name} must be in [0, 1), got {value!r:.80}")
        if not self.layer_norm_eps > 0:  # eps <= 0 divides by zero on a constant vector: NaN
            raise ConfigError(f"config.layer_norm_eps must be above 0, got {self.layer_norm_eps!r}")
        for name in ("bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and not _is_int(value):
                raise ConfigError(f"config.{name} must be an integer token id, got {value!r:.80}")

    def parameter_count(self) -> int:
        """Parameters of the largest model this config builds (encoder, pooler, MLM head)."""
        h, i, v = self.hidden_size, self.intermediate_size, self.vocab_size
        embeddings = (v + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h
        layer = 4 * (h * h + h) + 2 * h * i + i + h + 4 * h  # attention, feed-forward, 2 norms
        heads = (h * h + h) * 2 + 2 * h + v + (h + 1) * self.num_labels
        return embeddings + self.num_hidden_layers * layer + heads

    def check_fits_in_memory(self, source: str = "config") -> None:
        """Refuse a config whose float32 parameters alone exceed the memory available now."""
        needed = 4 * self.parameter_count()
        available = available_memory()
        if available is not None and needed > available:
            raise ConfigError(
                f"{source}: a model of this config needs about {needed / 2**30:,.1f} GiB for its "
                f"float32 parameters, but only {available / 2**30:,.1f} GiB of memory is available "
                f"(hidden_size={self.hidden_size}, num_hidden_layers={self.num_hidden_layers}, "
                f"vocab_size={self.vocab_size})"
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
        # minirob always ties the MLM decoder to the word embeddings; "false" would make
        # transformers look for a decoder matrix the file does not have.
        values.update({k: v for k, v in self.extra.items() if k != "tie_word_embeddings"})
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
            except (AttributeError, ValueError, TypeError):
                raise ConfigError(
                    f"{source}: id2label must map label ids to names, got {values['id2label']!r:.80}"
                ) from None
            if not all(isinstance(name, str) for name in kwargs["id2label"].values()):
                raise ConfigError(f"{source}: id2label names must be strings, got "
                                  f"{values['id2label']!r:.80}")
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
        except RecursionError:  # json recurses once per bracket: [[[[...]]]] exhausts the stack
            raise ConfigError(f"{path}: JSON nested too deeply to be a config") from None
        return cls.from_hf_dict(values, source=str(path))


def _is_int(value: Any) -> bool:
    """An integer that is not a bool (JSON ``true`` arrives as Python's ``True``, an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    """A finite int or float, not a bool or a string."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux ``MemAvailable``), or the physical
    memory where that cannot be read; None where neither can (then nothing is refused)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # Windows has no sysconf
        return None
