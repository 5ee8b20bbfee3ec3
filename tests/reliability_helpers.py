"""Shared pieces of the reliability tests (bad inputs, corrupted files, untrusted pickles, kills).

Everything is small and built on the spot: a random 1-layer RoBERTa saved in the HF layout with a
byte-level BPE tokenizer, a synthetic text corpus, and pickles that would run code if unpickled
naively.
"""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import pytest

from minirob import RobertaConfig, RobertaForMaskedLM
from minirob.cli import main as cli_main

WORDS = ("the cat dog sat on a mat and ran to house big small red blue green tree river stone "
         "light walked under over bright dark").split()


def write_corpus(path: Path, documents: int = 40, seed: int = 0) -> Path:
    """Plain-text corpus in the pretraining format: a line is a sentence, a blank line ends a doc."""
    rng = random.Random(seed)
    lines = []
    for _ in range(documents):
        for _ in range(6):
            lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))).capitalize() + ".")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def tiny_config(vocab_size: int) -> RobertaConfig:
    return RobertaConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=32, max_position_embeddings=34)


def tiny_model_dir(directory: Path) -> Path:
    """config.json + model.safetensors + vocab.json/merges.txt/tokenizer.json: what pretrain writes."""
    from minirob import Tokenizer

    corpus = write_corpus(directory.parent / f"{directory.name}-corpus.txt")
    tokenizer = Tokenizer.train([corpus.read_text()] * 2, vocab_size=300)
    RobertaForMaskedLM(tiny_config(tokenizer.vocab_size)).save_pretrained(directory)
    tokenizer.save(directory)
    return directory


# ------------------------------------------------------------------------ malicious pickles
class Payload:
    """Unpickling this calls ``function(*args)``: the classic pickle attack (``__reduce__``)."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker: Path) -> dict[str, Payload]:
    """Different ways a pickle can name code; each would create ``marker`` if it ran."""
    return {
        "os.system": Payload(os.system, f"touch {marker}"),
        "eval": Payload(eval, f"open({str(marker)!r}, 'w').close()"),
        "exec": Payload(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.call": Payload(subprocess.call, ["touch", str(marker)]),
    }


def evil_state(marker: Path, how: str = "os.system") -> dict:
    """A state dict with one honest-looking tensor and the payload hidden among the weights."""
    import torch

    return {"roberta.embeddings.word_embeddings.weight": torch.zeros(4, 2),
            "roberta.embeddings.LayerNorm.weight": payloads(marker)[how]}


def write_evil_torch(path: Path, marker: Path, how: str = "os.system", wrap=None) -> Path:
    """torch.save (zip format) of a state dict carrying the payload; ``wrap`` reshapes it first."""
    import torch

    state = evil_state(marker, how)
    torch.save(wrap(state) if wrap else state, path)
    return path


def write_evil_legacy(path: Path, marker: Path) -> Path:
    """The payload as a bare (non-zip) pickle, the format of torch < 1.6 and of pickle.dump."""
    # No tensors: pickling one outside torch.save names torch.storage._load_from_bytes, which the
    # allow-list refuses first; here the payload itself must be what is refused.
    path.write_bytes(pickle.dumps({"model": {"weight": payloads(marker)["os.system"]}}, protocol=2))
    return path


# ------------------------------------------------------------------------ the command line
def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``minirob ARGV`` in-process -> (exit code, stdout, stderr)."""
    try:
        code = cli_main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse rejects options by exiting 2
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli_subprocess(argv: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """``python -m minirob ARGV`` in a fresh interpreter, one torch thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "minirob", *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout, env=env, **kwargs)


def assert_clean_failure(code: int, err: str, *needles: str) -> None:
    """A non-zero exit, no Python traceback, and a message that names every needle."""
    assert code not in (0, None), f"expected failure, got exit {code}: {err}"
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


@pytest.fixture
def marker(tmp_path):
    """The file a payload would create; it must never appear."""
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a pickle payload ran"
