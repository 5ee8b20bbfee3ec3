"""transformers checkpoint files: reading them into tensors, writing them atomically.

This is the checkpoint-files layer for transformers' formats (``model.safetensors``,
``pytorch_model.bin``, ``config.json``); :mod:`minirob.fairseq` is its twin for fairseq's
``model.pt``. Both hand back a config and tensors under transformers' names and know nothing of the
model classes: :mod:`minirob.pretrained` builds models from what they return, through the name
tables in :mod:`minirob.names` (re-exported here, where older code and the tutorials find them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file  # module-level, so a test can stand in for the writer
from torch import Tensor

from .config import RobertaConfig
from .containers import check_regular_file
from .errors import CheckpointError, MissingFileError, WriteError, out_of_space
from .fairseq import read_fairseq_checkpoint
from .locks import process_alive
from .names import (  # noqa: F401 - re-exported: `from minirob.weights import BACKBONE_TABLE`
    BACKBONE_TABLE,
    DECODER_NAMES,
    HEAD_TABLES,
    hf_to_minirob,
    minirob_to_hf,
    printable,
)
from .safe_pickle import check_zip_crc, load_tensor_file

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
    check_regular_file(path)  # missing, a directory, a FIFO (would block), a device: one line
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty")
    if path.suffix == ".safetensors":
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
    check_zip_crc(path)  # every record's CRC-32, also those the loader below does not read
    return load_tensor_file(path)  # never torch.load: see safe_pickle (issue 19)


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


def is_fairseq(path: Path) -> bool:
    """A fairseq ``.pt`` file, or a directory with a ``.pt`` and no transformers weights."""
    path = Path(path)
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
    if is_fairseq(path):  # fairseq -> HF names, config from its args
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
    check_tied_decoder(state, config, path)
    return config, state


def check_tied_decoder(state: dict[str, Tensor], config: RobertaConfig, path) -> None:
    """Refuse an MLM decoder that is not the word-embedding table.

    minirob's MLM head multiplies by the word embeddings (tied, as RoBERTa and BERT train); a
    checkpoint saved with ``"tie_word_embeddings": false`` and a decoder of its own would load
    with other logits. A tied checkpoint's decoder copy is ignored, as transformers ignores it.
    """
    if config.extra.get("tie_word_embeddings", True) is not False:
        return
    words = next((state[n] for n in state if n.endswith("embeddings.word_embeddings.weight")), None)
    for name in DECODER_NAMES:
        decoder = state.get(name)
        if decoder is not None and (words is None or decoder.shape != words.shape
                                    or not torch.equal(decoder, words)):
            raise CheckpointError(
                f"{path}: {name} differs from the word embeddings and config.json says "
                "tie_word_embeddings=false; minirob ties the MLM decoder to the word embeddings, "
                "so it cannot load this untied model (convert or load it with --model encoder "
                "instead, or with transformers)"
            )


# ------------------------------------------------------------------------------ file writing
STAGING_PREFIX = ".saving-"
STALE_AFTER_S = 24 * 3600  # a staging folder this old is left over whoever made it


def write_checkpoint(directory: str | os.PathLike, config: RobertaConfig,
                     state: dict[str, Tensor], architecture: str) -> None:
    """config.json + model.safetensors in transformers' layout, written atomically.

    Both files are written into a staging folder beside the target and moved in with
    ``os.replace``, so a reader sees the old files or the new ones, never half of one. A full
    disk becomes one :class:`WriteError` naming the path and the size needed; the staging folder
    goes in every case, and folders left by savers that were killed go at the next save.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(directory)
        staging = Path(tempfile.mkdtemp(prefix=staging_prefix(), dir=directory))
    except OSError as error:
        raise _write_error(directory, error, None) from None
    try:
        target = staging / "config.json"
        try:
            config.save(target, architectures=[architecture])
            target = staging / "model.safetensors"
            metadata = {"format": "pt", CHECKSUM_KEY: weights_digest(state)}
            save_file(state, str(target), metadata=metadata)
            for name in ("config.json", "model.safetensors"):
                target = directory / name
                os.replace(staging / name, target)  # atomic per file
        except Exception as error:  # safetensors raises its own SafetensorError on a full disk
            needed = sum(t.numel() * t.element_size() for t in state.values())
            raise _write_error(directory / target.name, error, needed) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_error(path: Path, error: Exception, needed: int | None) -> WriteError:
    """One line for a failed write: the path, the cause, and on a full disk the sizes."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if not out_of_space(error):
        return WriteError(f"cannot write {path}: {text}")
    try:
        free = f", {shutil.disk_usage(path.parent).free / 2**20:,.1f} MB free"
    except OSError:
        free = ""
    size = f" (needs about {needed / 2**20:,.1f} MB{free})" if needed else ""
    return WriteError(f"cannot write {path}: no space left on the device{size}; nothing was "
                      "changed in the directory")


def staging_prefix() -> str:
    """``.saving-HOST-PID-``: lets a later save tell whether the writer is still alive."""
    host = socket.gethostname().replace("-", "_") or "host"
    return f"{STAGING_PREFIX}{host}-{os.getpid()}-"


def remove_stale_staging(directory: Path) -> None:
    """Delete staging folders whose writer is gone: a dead PID on this host, or older than a day.

    A saver that is alive (another process writing into the same parent right now) is left alone;
    a folder from another host, or of the older unnamed form, only once it is a day old.
    """
    now = time.time()
    for folder in directory.glob(STAGING_PREFIX + "*"):
        try:
            old = now - folder.stat().st_mtime > STALE_AFTER_S
        except OSError:
            continue  # removed meanwhile by its own writer
        if old or _writer_is_dead(folder.name):
            shutil.rmtree(folder, ignore_errors=True)


def _writer_is_dead(name: str) -> bool:
    """True only when the folder names this host and a process that no longer exists."""
    parts = name[len(STAGING_PREFIX):].split("-")
    host = socket.gethostname().replace("-", "_") or "host"
    if len(parts) < 3 or parts[0] != host or not parts[1].isdigit():
        return False
    return not process_alive(int(parts[1]))
