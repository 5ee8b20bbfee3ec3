"""RoBERTa's byte-level BPE tokenizer, over the Rust ``tokenizers`` library.

RoBERTa reads text as *byte-level* BPE tokens: the text's UTF-8 bytes are each mapped to a
printable character (so a space becomes ``Ġ``), split into word-like pieces by GPT-2's regular
expression, and each piece is merged pair by pair following a ranked list of merges. Any string
can be encoded (there are no unknown characters, only unknown *bytes*, and all 256 are in the
vocabulary) and decoded back exactly. :mod:`minirob.bpe` writes that algorithm out in plain Python
for reading; this module uses the fast Rust implementation and adds what a model needs around it:

* RoBERTa's special tokens and templates: ``<s> A </s>`` and ``<s> A </s></s> B </s>``;
* batches padded with ``<pad>``, truncation to a maximum length, attention masks;
* character offsets and, for every token, the index of the word it came from (for NER);
* reading and writing ``vocab.json`` + ``merges.txt`` (roberta-base's layout), GPT-2's
  ``encoder.json`` + ``vocab.bpe``, and any ``tokenizer.json`` (a BERT WordPiece one too).

Every choice that changes ids (where missing special tokens go, how offsets are trimmed) follows
``transformers``' ``RobertaTokenizer``; ``tests/test_tokenizer.py`` checks equality with it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tokenizers
import torch
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

from .config import RobertaConfig
from .errors import MinirobError, TokenizerError
from .vocab_files import MissingTokenizerFileError, read_json, read_merges, read_vocab

__all__ = ["Batch", "Encoding", "MissingTokenizerFileError", "SPECIAL_TOKENS", "Tokenizer", "read_merges",
           "read_vocab"]


# The order a freshly trained vocabulary gives its special tokens: ids 0, 1, 2, 3, 4, as in
# roberta-base's vocab.json (fairseq's dictionary puts <s>, <pad>, </s>, <unk> first).
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")

# The order in which special tokens that a loaded vocabulary lacks (GPT-2's has none of them) are
# appended after its last id. It is transformers' order (bos, eos, unk, pad, mask), so a GPT-2
# vocabulary gets <s>=50257, </s>=50258, <unk>=50259, <pad>=50260, <mask>=50261 in both libraries.
_APPEND_ORDER = ("<s>", "</s>", "<unk>", "<pad>", "<mask>")

# Each role accepts RoBERTa's spelling first, then BERT's, so a WordPiece tokenizer.json works too.
_ROLES = {
    "bos": ("<s>", "[CLS]"),
    "eos": ("</s>", "[SEP]"),
    "pad": ("<pad>", "[PAD]"),
    "unk": ("<unk>", "[UNK]"),
    "mask": ("<mask>", "[MASK]"),
}


@dataclass
class Encoding:
    """One encoded text (or text pair): parallel lists, one entry per token.

    ``offsets[i]`` is the ``(start, end)`` character span of token ``i`` in the text it came from
    (for a pair, in text B for B's tokens; ``(0, 0)`` for special tokens). ``word_ids[i]`` is the
    index of the word the token belongs to (``None`` for special tokens); ``sequence_ids[i]`` is
    0 for text A, 1 for text B, ``None`` for special tokens.
    """

    ids: list[int]
    tokens: list[str]
    attention_mask: list[int]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    sequence_ids: list[int | None] = field(default_factory=list)
    special_tokens_mask: list[int] = field(default_factory=list)
    type_ids: list[int] = field(default_factory=list)  # BERT's segment ids; all 0 for RoBERTa

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def _from_rust(cls, encoding: tokenizers.Encoding) -> Encoding:
        return cls(
            ids=list(encoding.ids),
            tokens=list(encoding.tokens),
            attention_mask=list(encoding.attention_mask),
            offsets=[tuple(span) for span in encoding.offsets],
            word_ids=list(encoding.word_ids),
            sequence_ids=list(encoding.sequence_ids),
            special_tokens_mask=list(encoding.special_tokens_mask),
            type_ids=list(encoding.type_ids),
        )


class Batch(Mapping):
    """An encoded batch: a read-only mapping, readable as attributes too (``batch.input_ids``).

    Tensors (``torch.long``, shape ``(B, T)``): ``input_ids``, ``attention_mask`` (1 = real token,
    0 = padding), ``special_tokens_mask`` (1 = ``<s>``, ``</s>`` or ``<pad>``),
    ``token_type_ids`` (segment of each token: BERT uses it, RoBERTa's is all zeros). Lists of
    ``B`` lists of ``T`` entries: ``offsets``, ``word_ids``, ``tokens``. With ``padding=False``
    every value is a list of per-text lists (sequences of different lengths do not make a tensor).

    Each value is built on first access: packing a corpus needs only ``input_ids``, and turning
    a million tokens' offsets and strings into Python objects would cost more than encoding them.

    The mapping's *keys* are the model's inputs only (``input_ids``, ``attention_mask``, and
    ``token_type_ids`` for a BERT-style tokenizer), so ``model(**batch)`` passes exactly what the
    model's ``forward`` takes; the other values are read by name (``batch["offsets"]``,
    ``batch.word_ids``). ``batch.to(device)`` moves the model inputs.
    """

    _TABLES = {"input_ids": "ids", "attention_mask": "attention_mask",
               "special_tokens_mask": "special_tokens_mask", "token_type_ids": "type_ids"}
    _LISTS = ("offsets", "word_ids", "tokens")

    def __init__(
        self,
        encodings: list[tokenizers.Encoding],
        tensors: bool,
        keys: Sequence[str] = ("input_ids", "attention_mask"),
        single: bool = False,
    ):
        self.encodings = encodings  # the Rust results, one per text
        self._tensors = tensors
        self._keys = tuple(keys)
        self._single = single  # one text given as a str, lists asked for: values are that text's row
        self._values: dict = {}

    def __getitem__(self, key: str):
        if key not in self._values:
            if key in self._TABLES:
                rows = [getattr(encoding, self._TABLES[key]) for encoding in self.encodings]
                if self._tensors:  # (B, T); an empty batch gives (0, 0)
                    rows = torch.tensor(rows, dtype=torch.long).reshape(len(rows), -1 if rows else 0)
                self._values[key] = rows
            elif key == "offsets":
                self._values[key] = [[tuple(span) for span in e.offsets] for e in self.encodings]
            elif key in self._LISTS:
                self._values[key] = [getattr(encoding, key) for encoding in self.encodings]
            else:
                raise KeyError(key)
            if self._single and not self._tensors:
                self._values[key] = self._values[key][0]
        return self._values[key]

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def to(self, device) -> Batch:
        """Move the model inputs (the keys) to ``device``, in place; returns the batch."""
        if not self._tensors:
            raise TokenizerError("this batch holds lists, not tensors; encode with return_tensors='pt'")
        for key in self._keys:
            self._values[key] = self[key].to(device)
        return self

    def __getattr__(self, name: str):
        if name.startswith("_") or name == "encodings":
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        shape = tuple(self["input_ids"].shape) if self._tensors else f"{len(self.encodings)} rows"
        return f"Batch(input_ids {shape}, keys={list(self)})"


#: The input length assumed when neither the tokenizer's files nor a model say it: RoBERTa's and
#: BERT's 512 tokens.
DEFAULT_MODEL_MAX_LENGTH = 512

#: The largest vocabulary :meth:`Tokenizer.train` accepts. The biggest real ones hold ~250,000
#: tokens; a typo like ``--vocab-size 1000000000`` would otherwise make the Rust trainer try to
#: reserve memory for a billion entries and abort the whole process.
MAX_VOCAB_SIZE = 2**20


class Tokenizer:
    """Byte-level BPE with RoBERTa's special tokens (or any ``tokenizers`` tokenizer loaded from a
    ``tokenizer.json``).

    Build one with :meth:`train`, :meth:`from_pretrained` or :meth:`from_gpt2_files`; call it like
    transformers' tokenizers (:meth:`__call__`) to get a batch that ``model(**batch)`` accepts.

    ``model_max_length`` is the longest input the model takes (``None``: unknown, then
    :data:`DEFAULT_MODEL_MAX_LENGTH` is assumed when truncating). :meth:`from_pretrained` reads it
    from ``tokenizer_config.json`` or from the model's ``config.json`` in the same directory.
    """

    def __init__(self, backend: tokenizers.Tokenizer, model_max_length: int | None = None):
        # The wrapped tokenizer carries no truncation or padding of its own: each call below
        # sets them for its own duration, so two calls never see each other's settings.
        backend.no_truncation()
        backend.no_padding()
        self._backend = backend
        self._words_backend = None  # built on first encode_words (see _backend_for_words)
        ids = {role: self._first_known(names) for role, names in _ROLES.items()}
        self.bos_id: int | None = ids["bos"]
        self.eos_id: int | None = ids["eos"]
        self.pad_id: int | None = ids["pad"]
        self.unk_id: int | None = ids["unk"]
        self.mask_id: int | None = ids["mask"]
        self.model_max_length = model_max_length

    # ----------------------------------------------------------------------------- building

    @classmethod
    def train(
        cls,
        files_or_texts: str | os.PathLike | Iterable[str] | Iterable[os.PathLike],
        vocab_size: int = 8192,
        min_frequency: int = 2,
        add_prefix_space: bool = False,
        show_progress: bool = False,
    ) -> Tokenizer:
        """Learn a byte-level BPE vocabulary of ``vocab_size`` tokens.

        ``files_or_texts`` is a path, a list of paths (``Path`` objects, or strings naming existing
        files), or any iterable of text strings (one document or line each). The vocabulary holds
        the five special tokens (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, ``<mask>``=4),
        the 256 byte symbols, then one token per learned merge; a merge is learned only if the
        pair occurs at least ``min_frequency`` times, so a small corpus may stop short of
        ``vocab_size``.
        """
        smallest = len(SPECIAL_TOKENS) + 256
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or not smallest <= vocab_size <= MAX_VOCAB_SIZE:
            raise TokenizerError(
                f"vocab_size={vocab_size!r} is out of range: a byte-level BPE needs at least "
                f"{smallest} tokens ({len(SPECIAL_TOKENS)} special + 256 bytes), and minirob trains "
                f"at most {MAX_VOCAB_SIZE:,} (the largest real vocabularies hold ~250,000)"
            )
        if not isinstance(min_frequency, int) or isinstance(min_frequency, bool) or min_frequency < 1:
            raise TokenizerError(f"min_frequency must be an integer >= 1, got {min_frequency!r}")
        backend = _empty_byte_level_bpe(add_prefix_space)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=[_special(token) for token in SPECIAL_TOKENS],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=show_progress,
        )
        files = _as_files(files_or_texts)
        try:
            if files is not None:
                backend.train([str(path) for path in files], trainer)
            else:
                backend.train_from_iterator(_checked_texts(files_or_texts), trainer)
        except TokenizerError:
            raise
        except Exception as error:  # the Rust side reports e.g. invalid UTF-8, without the file
            where = _first_non_utf8_line(files or [])
            raise TokenizerError(f"training the tokenizer failed: {where or error}") from error
        _add_roberta_post_processor(backend, add_prefix_space)
        return cls(backend)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, add_prefix_space: bool | None = None) -> Tokenizer:
        """Load a tokenizer from a ``tokenizer.json`` file, or from a directory holding
        ``tokenizer.json``, ``vocab.json`` + ``merges.txt`` (roberta-base's layout) or
        ``encoder.json`` + ``vocab.bpe`` (GPT-2's), tried in that order.

        ``add_prefix_space`` overrides the saved setting when given (byte-level tokenizers only).
        ``model_max_length`` (see the class) is read from the files when not given.
        """
        tokenizer = cls._load_files(Path(path), add_prefix_space)
        directory = Path(path) if Path(path).is_dir() else Path(path).parent
        tokenizer.model_max_length = _model_max_length(directory)
        return tokenizer

    @classmethod
    def _load_files(cls, path: Path, add_prefix_space: bool | None) -> Tokenizer:
        if not path.exists():
            raise MissingTokenizerFileError(f"tokenizer path does not exist: {path}")
        if path.is_file():
            if path.suffix != ".json":
                raise TokenizerError(
                    f"{path}: expected a tokenizer.json file or a directory with vocab.json + "
                    "merges.txt"
                )
            return cls._from_tokenizer_json(path, add_prefix_space)
        if (path / "tokenizer.json").is_file():
            return cls._from_tokenizer_json(path / "tokenizer.json", add_prefix_space)
        for vocab_name, merges_name in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
            if (path / vocab_name).is_file() or (path / merges_name).is_file():
                return cls.from_vocab_and_merges(
                    path / vocab_name, path / merges_name, add_prefix_space=bool(add_prefix_space)
                )
        raise MissingTokenizerFileError(
            f"{path}: no tokenizer.json, vocab.json + merges.txt, or encoder.json + vocab.bpe found"
        )

    @classmethod
    def from_gpt2_files(
        cls, encoder_json: str | os.PathLike, vocab_bpe: str | os.PathLike, add_prefix_space: bool = False
    ) -> Tokenizer:
        """Load GPT-2's vocabulary (``encoder.json``, 50,257 tokens) and merges (``vocab.bpe``).

        GPT-2 has none of RoBERTa's special tokens, so they are appended: ``<s>``=50257,
        ``</s>``=50258, ``<unk>``=50259, ``<pad>``=50260, ``<mask>``=50261 (transformers' order).
        Every other id is GPT-2's own (``"Hello"`` is 15496). roberta-base uses the same merges
        but renumbers the tokens (fairseq's dictionary), so use its own ``vocab.json`` for it.
        """
        return cls.from_vocab_and_merges(encoder_json, vocab_bpe, add_prefix_space=add_prefix_space)

    @classmethod
    def from_vocab_and_merges(
        cls, vocab_path: str | os.PathLike, merges_path: str | os.PathLike, add_prefix_space: bool = False
    ) -> Tokenizer:
        """Load a byte-level BPE from a token->id JSON file and a merges file (one ``a b`` pair per
        line, highest priority first, an optional ``#version`` first line). Both files are
        checked line by line so a mistake is reported with its file and line."""
        vocab = read_vocab(vocab_path)
        merges = read_merges(merges_path, vocab, vocab_path)
        backend = tokenizers.Tokenizer(
            models.BPE(
                vocab=vocab,
                merges=merges,
                dropout=None,
                continuing_subword_prefix="",
                end_of_word_suffix="",
                fuse_unk=False,
            )
        )
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        backend.decoder = decoders.ByteLevel()
        # A special token already in the vocabulary keeps its id; a missing one is appended.
        backend.add_special_tokens([_special(token) for token in _APPEND_ORDER])
        _add_roberta_post_processor(backend, add_prefix_space)
        return cls(backend)

    @classmethod
    def _from_tokenizer_json(cls, path: Path, add_prefix_space: bool | None) -> Tokenizer:
        spec = read_json(path, "tokenizer.json")
        if not isinstance(spec, dict) or "model" not in spec:
            raise TokenizerError(f"{path}: not a tokenizer.json (no 'model' entry)")
        if add_prefix_space is not None:
            spec = _with_prefix_space(spec, add_prefix_space)
        try:
            backend = tokenizers.Tokenizer.from_str(json.dumps(spec))
        except RecursionError:
            raise TokenizerError(f"{path}: JSON nested too deeply to be a tokenizer.json") from None
        except Exception as error:
            raise TokenizerError(f"{path}: the tokenizers library cannot read it: {error}") from None
        return cls(backend)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``tokenizer.json`` and, for a BPE model, ``vocab.json`` + ``merges.txt`` in
        roberta-base's layout (special tokens included in ``vocab.json``). Returns the directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._backend.save(str(directory / "tokenizer.json"))
        spec = json.loads(self._backend.to_str())
        if spec["model"]["type"] == "BPE":
            vocab = self._backend.get_vocab(with_added_tokens=True)
            ordered = dict(sorted(vocab.items(), key=lambda item: item[1]))
            with open(directory / "vocab.json", "w", encoding="utf-8") as handle:
                json.dump(ordered, handle, ensure_ascii=False)
            with open(directory / "merges.txt", "w", encoding="utf-8") as handle:
                handle.write("#version: 0.2\n")
                for merge in spec["model"]["merges"]:
                    # tokenizers >= 0.20 stores [a, b]; older files store "a b".
                    handle.write((merge if isinstance(merge, str) else " ".join(merge)) + "\n")
        if self.model_max_length is not None:  # transformers reads this file too
            config = {"model_max_length": self.model_max_length}
            (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n")
        return directory

    # ----------------------------------------------------------------------------- properties

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (the model's embedding rows must be >= this)."""
        return self._backend.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def add_prefix_space(self) -> bool:
        """Whether a space is put before the text, so its first word is encoded like any other."""
        return bool(_find_byte_level(_component_spec(self._backend.pre_tokenizer), False))

    @property
    def backend(self) -> tokenizers.Tokenizer:
        """The wrapped ``tokenizers.Tokenizer`` (for inspection; do not change its settings)."""
        return self._backend

    # transformers' names for the special tokens: the id (or the token string) of each role, None
    # when this vocabulary has none (a WordLevel tokenizer.json may lack a mask token, say).

    @property
    def mask_token_id(self) -> int | None:
        return self.mask_id

    @property
    def mask_token(self) -> str | None:
        return self._token_or_none(self.mask_id)

    @property
    def pad_token_id(self) -> int | None:
        return self.pad_id

    @property
    def pad_token(self) -> str | None:
        return self._token_or_none(self.pad_id)

    @property
    def bos_token_id(self) -> int | None:
        return self.bos_id

    @property
    def eos_token_id(self) -> int | None:
        return self.eos_id

    @property
    def unk_token_id(self) -> int | None:
        return self.unk_id

    def require_mask_token(self) -> str:
        """The mask token, or a :class:`TokenizerError` saying this vocabulary has none (for
        fill-mask and masked-word pretraining, which cannot work without one)."""
        if self.mask_id is None:
            raise TokenizerError(
                f"this tokenizer has no mask token ({' or '.join(_ROLES['mask'])}), so it cannot "
                f"fill in masked words; its special tokens are {self._special_token_names()}"
            )
        return self.mask_token

    @property
    def model_input_names(self) -> tuple[str, ...]:
        """The keys of a batch from :meth:`__call__`: what the model's ``forward`` takes. BERT-style
        tokenizers (a ``[CLS] A [SEP] B [SEP]`` template) add ``token_type_ids``; RoBERTa has one
        segment, and transformers' RoBERTa tokenizers leave them out too."""
        processor = _component_spec(self._backend.post_processor) or {}
        if processor.get("type") in ("TemplateProcessing", "BertProcessing"):
            return ("input_ids", "token_type_ids", "attention_mask")
        return ("input_ids", "attention_mask")

    def _token_or_none(self, token_id: int | None) -> str | None:
        return None if token_id is None else self._backend.id_to_token(token_id)

    def _special_token_names(self) -> list[str]:
        found = (self._token_or_none(token_id) for token_id in (self.bos_id, self.eos_id, self.pad_id, self.unk_id))
        return [token for token in found if token is not None]

    def token_to_id(self, token: str) -> int | None:
        return self._backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> str:
        self._check_ids([token_id])
        return self._backend.id_to_token(token_id)

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    def __repr__(self) -> str:
        model = type(self._backend.model).__name__
        return f"Tokenizer({model}, vocab_size={self.vocab_size}, add_prefix_space={self.add_prefix_space})"

    # ----------------------------------------------------------------------------- encoding

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        padding: bool | str = True,
        truncation: bool | str = True,
        max_length: int | None = None,
        return_tensors: str | None = None,
        add_special_tokens: bool = True,
    ) -> Batch:
        """Encode like transformers' tokenizers: ``tok(texts, return_tensors="pt")``.

        Returns a :class:`Batch` whose keys are :attr:`model_input_names`, so
        ``model(**tok(texts, return_tensors="pt"))`` runs. ``text`` is one string or a list
        (``text_pair`` likewise, for pairs). ``truncation=True`` (the default, unlike
        transformers, so that a long text cannot fail at the model) cuts each input to
        ``max_length``, else to :attr:`model_max_length`, else to 512 tokens;
        ``truncation=False`` keeps every token. ``padding``: ``True``/``"longest"``,
        ``"max_length"`` or ``False``. ``return_tensors``: ``"pt"`` for ``(B, T)`` tensors,
        ``None`` for lists (one text given as a string: its own lists, not a batch of one).
        """
        if return_tensors not in (None, "pt"):
            raise TokenizerError(f"return_tensors={return_tensors!r}: minirob returns 'pt' (torch) tensors or lists (None)")
        if truncation not in (True, False, "longest_first", "do_not_truncate"):
            raise TokenizerError(
                f"truncation={truncation!r}: expected True/'longest_first' or False/'do_not_truncate'"
            )
        single = isinstance(text, str)
        texts = [text] if single else text
        pairs = [text_pair] if isinstance(text_pair, str) else text_pair
        if truncation in (True, "longest_first"):
            max_length = max_length or self.model_max_length or DEFAULT_MODEL_MAX_LENGTH
        elif padding != "max_length":
            max_length = None  # transformers, too, keeps every token when truncation is off
        tensors = return_tensors == "pt"
        if tensors and padding is False:
            padding = "longest"  # rows of different lengths cannot make one tensor
        batch = self.encode_batch(texts, pairs, max_length=max_length, padding=padding,
                                  add_special_tokens=add_special_tokens)  # fmt: skip
        return Batch(batch.encodings, tensors=tensors, keys=self.model_input_names, single=single)

    def tokenize(self, text: str) -> list[str]:
        """The token strings of ``text``, without special tokens (for showing, not for models)."""
        _check_text(text, "text")
        return self._backend.encode(text, add_special_tokens=False).tokens

    def encode(
        self, text: str, pair: str | None = None, max_length: int | None = None, add_special_tokens: bool = True
    ) -> Encoding:
        """Encode one text, or a pair of texts, with RoBERTa's template around it.

        ``<s> A </s>`` or ``<s> A </s></s> B </s>``. With ``max_length``, tokens are cut from the
        end of the longer text first until the whole, special tokens included, fits.
        """
        _check_text(text, "text")
        if pair is not None:
            _check_text(pair, "pair")
        with self._truncation(max_length, pair is not None, add_special_tokens):
            args = (text,) if pair is None else (text, pair)
            encoding = self._backend.encode(*args, add_special_tokens=add_special_tokens)
        return Encoding._from_rust(encoding)

    def encode_batch(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        max_length: int | None = None,
        padding: bool | str = True,
        add_special_tokens: bool = True,
    ) -> Batch:
        """Encode several texts (or pairs) into one padded batch (see :class:`Batch`).

        ``padding``: ``True``/``"longest"`` pads to the longest text, ``"max_length"`` to
        ``max_length``, ``False`` leaves lists of different lengths.
        """
        texts = _check_text_list(texts, "texts")
        if pairs is not None:
            pairs = _check_text_list(pairs, "pairs")
            if len(pairs) != len(texts):
                raise TokenizerError(f"got {len(texts)} texts but {len(pairs)} pairs")
            inputs = list(zip(texts, pairs))
        else:
            inputs = texts
        with self._truncation(max_length, pairs is not None, add_special_tokens):
            with self._padding(padding, max_length):
                encodings = self._backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
        return Batch(encodings, tensors=padding is not False, keys=self.model_input_names)

    def encode_words(self, words: Sequence[str], max_length: int | None = None) -> Encoding:
        """Encode text already split into words (a NER sentence): ``word_ids`` maps each token to
        the index of its word in ``words``, offsets are within that word.

        Each word is encoded as if a space preceded it (``add_prefix_space``, what transformers
        demands for split words), so ``["New", "York"]`` gives the tokens of ``" New York"``.
        """
        words = _check_text_list(words, "words")
        backend = self._backend_for_words()
        with self._truncation(max_length, False, True, backend):
            encoding = backend.encode(words, is_pretokenized=True)
        return Encoding._from_rust(encoding)

    def encode_words_batch(
        self, sentences: Sequence[Sequence[str]], max_length: int | None = None, padding: bool | str = True
    ) -> Batch:
        """:meth:`encode_words` for several sentences, padded into one :class:`Batch`."""
        if isinstance(sentences, (str, bytes)) or not isinstance(sentences, Sequence):
            raise TokenizerError(f"sentences must be a list of word lists, got {type(sentences).__name__}")
        sentences = [_check_text_list(words, f"sentences[{i}]") for i, words in enumerate(sentences)]
        backend = self._backend_for_words()
        with self._truncation(max_length, False, True, backend):
            with self._padding(padding, max_length, backend):
                encodings = backend.encode_batch(sentences, is_pretokenized=True)
        return Batch(encodings, tensors=padding is not False, keys=self.model_input_names)

    # ----------------------------------------------------------------------------- decoding

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Turn ids (a list, or a 1-D tensor) back into text. For a byte-level tokenizer without
        ``add_prefix_space``, ``decode(encode(text).ids) == text`` for every string that does not
        spell a special token such as ``<mask>`` (those are matched as special tokens and then
        skipped; ``encode(text, add_special_tokens=False)`` with ``skip_special_tokens=False``
        round-trips every string but one with whitespace before ``<mask>``, which the mask token
        takes in, as roberta-base's does)."""
        ids = _as_id_list(ids)
        self._check_ids(ids)
        return self._backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def decode_batch(self, batch_ids, skip_special_tokens: bool = True) -> list[str]:
        """:meth:`decode` for each row of a list of lists or a ``(B, T)`` tensor."""
        if isinstance(batch_ids, torch.Tensor):
            batch_ids = batch_ids.tolist()
        return [self.decode(row, skip_special_tokens) for row in batch_ids]

    # ----------------------------------------------------------------------------- internals

    def _first_known(self, names: Sequence[str]) -> int | None:
        for name in names:
            token_id = self._backend.token_to_id(name)
            if token_id is not None:
                return token_id
        return None

    def _check_ids(self, ids: Sequence[int]) -> None:
        size = self.vocab_size
        for token_id in ids:
            if not isinstance(token_id, int) or isinstance(token_id, bool) or not 0 <= token_id < size:
                raise TokenizerError(f"token id {token_id!r} is not in the vocabulary (ids 0..{size - 1})")

    def _backend_for_words(self) -> tokenizers.Tokenizer:
        """A copy of the backend whose byte-level pre-tokenizer puts a space before each word."""
        if self._words_backend is None:
            if _find_byte_level(_component_spec(self._backend.pre_tokenizer), None) is None:
                self._words_backend = self._backend  # WordPiece etc.: words need no prefix space
            else:
                spec = _with_prefix_space(json.loads(self._backend.to_str()), True)
                self._words_backend = tokenizers.Tokenizer.from_str(json.dumps(spec))
        return self._words_backend

    def _special_count(self, is_pair: bool, backend: tokenizers.Tokenizer | None = None) -> int:
        processor = (backend or self._backend).post_processor
        return processor.num_special_tokens_to_add(is_pair) if processor is not None else 0

    def _truncation(self, max_length, is_pair, add_special_tokens, backend=None):
        backend = backend or self._backend
        if max_length is None:
            return _Setting()
        if not isinstance(max_length, int) or isinstance(max_length, bool):
            raise TokenizerError(f"max_length must be an int or None, got {max_length!r}")
        needed = self._special_count(is_pair, backend) if add_special_tokens else 0
        if max_length < needed + 1:
            raise TokenizerError(
                f"max_length={max_length} is too small: the special tokens of a "
                f"{'pair' if is_pair else 'single text'} take {needed}, leaving no room for text"
            )
        return _Setting(lambda: backend.enable_truncation(max_length), backend.no_truncation)

    def _padding(self, padding, max_length, backend=None):
        backend = backend or self._backend
        if padding is False:
            return _Setting()
        if padding not in (True, "longest", "max_length"):
            raise TokenizerError(f"padding={padding!r}: expected True, 'longest', 'max_length' or False")
        if self.pad_id is None:
            raise TokenizerError("this tokenizer has no padding token (<pad> or [PAD]); pass padding=False")
        if padding == "max_length" and max_length is None:
            raise TokenizerError("padding='max_length' needs max_length")
        length = max_length if padding == "max_length" else None
        pad_token = self._backend.id_to_token(self.pad_id)
        return _Setting(
            lambda: backend.enable_padding(pad_id=self.pad_id, pad_token=pad_token, length=length),
            backend.no_padding,
        )


# --------------------------------------------------------------------------------- helpers


class _Setting:
    """Context manager: switch a backend setting (truncation, padding) on for one call only.

    The Rust tokenizer keeps these as state; switching them off again on the way out means a call
    never inherits another call's settings (one Tokenizer is not meant for concurrent threads)."""

    def __init__(self, enable=None, disable=None):
        self.enable, self.disable = enable, disable

    def __enter__(self):
        if self.enable:
            self.enable()

    def __exit__(self, *exc):
        if self.disable:
            self.disable()


def _special(token: str) -> tokenizers.AddedToken:
    """A special token, matched in the text as written. ``<mask>`` also takes the space before it
    (``lstrip``), as roberta-base's does: ``"life is <mask>."`` becomes ``life``, ``Ġis``,
    ``<mask>``, ``.``: the model predicts the word *with* its space (``Ġhappiness``), which is
    the token that stands in that place in running text."""
    return tokenizers.AddedToken(token, special=True, normalized=False, lstrip=token == "<mask>")


def _empty_byte_level_bpe(add_prefix_space: bool) -> tokenizers.Tokenizer:
    backend = tokenizers.Tokenizer(models.BPE(dropout=None, fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    backend.decoder = decoders.ByteLevel()
    return backend


def _add_roberta_post_processor(backend: tokenizers.Tokenizer, add_prefix_space: bool) -> None:
    """``<s> A </s>`` / ``<s> A </s></s> B </s>``; ``trim_offsets`` leaves the leading ``Ġ``
    (space) out of each token's character span, as transformers does."""
    backend.post_processor = processors.RobertaProcessing(
        ("</s>", backend.token_to_id("</s>")),
        ("<s>", backend.token_to_id("<s>")),
        trim_offsets=True,
        add_prefix_space=add_prefix_space,
    )


def _model_max_length(directory: Path) -> int | None:
    """The longest input the model next to a tokenizer takes: ``model_max_length`` from
    ``tokenizer_config.json`` (transformers' own record; it writes 10**30 for "unknown", which is
    ignored), else the position table of ``config.json`` (RoBERTa: 514 rows hold 512 tokens). A
    file that cannot be read gives ``None``: loading the model reports it, with its reasons."""
    try:
        saved = read_json(directory / "tokenizer_config.json").get("model_max_length")
        if isinstance(saved, int) and not isinstance(saved, bool) and 0 < saved <= 10**7:
            return saved
    except (TokenizerError, AttributeError):
        pass
    if (directory / "config.json").is_file():
        try:
            return RobertaConfig.load(directory).max_sequence_length
        except (MinirobError, RecursionError):  # RecursionError: a config.json nested absurdly deep
            return None
    return None


def _component_spec(component) -> dict | None:
    """The JSON description of one pipeline step (a pre-tokenizer, ...), ``None`` if absent."""
    return None if component is None else json.loads(component.__getstate__())


def _find_byte_level(component: dict | None, default):
    """The ``add_prefix_space`` of a ByteLevel pre-tokenizer, looking inside Sequences."""
    if not component:
        return default
    if component.get("type") == "ByteLevel":
        return component.get("add_prefix_space", False)
    for inner in component.get("pretokenizers", []):
        found = _find_byte_level(inner, None)
        if found is not None:
            return found
    return default


def _with_prefix_space(spec: dict, add_prefix_space: bool) -> dict:
    """A copy of a tokenizer.json spec with every ByteLevel / RobertaProcessing step set to
    ``add_prefix_space`` (the decoder is left alone: it never adds spaces)."""

    def visit(component):
        if isinstance(component, dict):
            if component.get("type") in ("ByteLevel", "RobertaProcessing") and "add_prefix_space" in component:
                component["add_prefix_space"] = add_prefix_space
            for key in ("pretokenizers", "processors"):
                for inner in component.get(key, []):
                    visit(inner)

    spec = json.loads(json.dumps(spec))
    visit(spec.get("pre_tokenizer"))
    visit(spec.get("post_processor"))
    return spec


def _check_text(text, name: str) -> None:
    if not isinstance(text, str):
        raise TokenizerError(f"{name} must be a str, got {type(text).__name__}: {text!r:.60}")
    if not text.isascii():  # a lone surrogate ('\ud800') is a str but not UTF-8: tokenizers refuses it
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise TokenizerError(
                f"{name} holds {text[error.start]!r} at index {error.start}, a lone surrogate that "
                "UTF-8 cannot encode (decode your bytes with errors='replace')"
            ) from None


def _check_text_list(texts, name: str) -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise TokenizerError(f"{name} must be a list of str, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        _check_text(text, f"{name}[{i}]")
    return list(texts)


def _as_id_list(ids) -> list[int]:
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1:
            raise TokenizerError(f"decode takes a 1-D sequence of ids, got a tensor of shape {tuple(ids.shape)}")
        return ids.tolist()
    if isinstance(ids, int):
        return [ids]
    return list(ids)


def _as_files(source) -> list[Path] | None:
    """The list of training files ``source`` names, or ``None`` if it is an iterable of texts."""
    if isinstance(source, (str, os.PathLike)):
        source = [source]
        must_be_files = True
    elif isinstance(source, (list, tuple)) and source:
        first = source[0]
        must_be_files = isinstance(first, os.PathLike) or (
            isinstance(first, str) and "\n" not in first and len(first) < 4096 and Path(first).is_file()
        )
    else:
        return None
    if not must_be_files:
        return None
    paths = [Path(item) for item in source]
    for path in paths:
        if not path.is_file():
            raise MissingTokenizerFileError(f"training file not found: {path}")
    return paths


def _first_non_utf8_line(paths: list[Path]) -> str | None:
    """``"FILE:LINE: not UTF-8 text"`` for the first line of ``paths`` that is not UTF-8."""
    for path in paths:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as error:
                    return f"{path}:{number}: not UTF-8 text ({error.reason} at byte {error.start} of the line)"
    return None


def _checked_texts(texts):
    if isinstance(texts, (bytes, int, float)) or not isinstance(texts, Iterable):
        raise TokenizerError(f"train expects files or an iterable of str, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TokenizerError(f"training text #{i} must be a str, got {type(text).__name__}")
        yield text
