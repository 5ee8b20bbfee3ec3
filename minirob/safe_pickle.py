"""Reading pickled checkpoints without running the code they might carry.

A ``.pt`` file is a Python pickle, and a pickle is a small program: its ``GLOBAL`` / ``REDUCE``
instructions import any callable by name and call it. ``torch.load(path, weights_only=False)``
therefore runs whatever a stranger put in the file (``os.system``, ``eval``, ...). fairseq's
``model.pt`` cannot be read with ``weights_only=True`` either, because next to the tensors it pickles
an ``argparse.Namespace`` (the training arguments) and training bookkeeping.

So this module gives ``torch.load`` an unpickler whose ``find_class`` -- the single place a pickle
can name code -- consults an allow-list:

* **allowed**: plain containers, ``argparse.Namespace``, the functions torch itself uses to rebuild
  tensors, torch dtypes, numpy scalars/arrays (fairseq stores some metrics as numpy floats);
* **inert stand-ins**: classes from ``fairseq`` and ``omegaconf`` (meters, enums, configs) become
  :class:`Opaque` records that keep their arguments and state as data; the real class is never
  imported, so none of its code runs;
* **everything else** raises :class:`~minirob.errors.UnsafeCheckpointError` *before* the name is
  imported or called: a file that asks for ``posix.system`` is refused and nothing it carries runs.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import codecs
import collections
import os
import pickle
import tarfile
import types
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, MissingFileError, UnsafeCheckpointError


class Opaque:
    """Stand-in for an object of a class we refuse to import (a fairseq meter, an omegaconf node).

    It records what the pickle tried to build -- constructor arguments and ``__setstate__`` state --
    and does nothing else.
    """

    qualified_name = "?"
    # Class-level defaults: pickle's NEWOBJ builds the object without calling __init__.
    args: tuple = ()
    kwargs: dict = {}
    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<Opaque {self.qualified_name}>"


# Modules whose classes we never import but may stand in for: training bookkeeping, not weights.
OPAQUE_MODULE_PREFIXES = ("fairseq.", "omegaconf.")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``; only that one codec."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UnsafeCheckpointError(f"pickle asked for _codecs.encode with codec {encoding!r}")
    return codecs.encode(text, encoding)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> the object ``find_class`` may return for it."""
    import torch._utils

    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "complex"): complex,
        ("builtins", "bytearray"): bytearray,
        ("_codecs", "encode"): _latin1_encode,
        ("argparse", "Namespace"): argparse.Namespace,
        ("torch", "Size"): torch.Size,
        ("torch", "Tensor"): torch.Tensor,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
        ("torch.serialization", "_get_layout"): torch.serialization._get_layout,
    }
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter",
                 "_rebuild_parameter_with_state"):
        if hasattr(torch._utils, name):
            allowed[("torch._utils", name)] = getattr(torch._utils, name)
    for name in dir(torch):  # torch.float32 and friends pickle as globals of module `torch`
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[("torch", name)] = getattr(torch, name)
    try:
        import numpy

        allowed[("numpy", "dtype")] = numpy.dtype
        allowed[("numpy", "ndarray")] = numpy.ndarray
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            allowed[(module, "scalar")] = _numpy_scalar
            allowed[(module, "_reconstruct")] = _numpy_reconstruct
    except ImportError:  # numpy is a dependency, but the loader does not need it for weights
        pass
    return allowed


def _numpy_scalar(dtype, data=None):
    """numpy's scalar constructor, refusing object dtype (which would smuggle in a pickle)."""
    import numpy

    if dtype.hasobject:
        raise UnsafeCheckpointError("pickle holds a numpy scalar of object dtype")
    return numpy.frombuffer(data, dtype=dtype)[0] if data is not None else dtype.type()


def _numpy_reconstruct(cls, shape, dtype_code):
    import numpy

    if cls is not numpy.ndarray:
        raise UnsafeCheckpointError(f"pickle asked numpy to rebuild a {cls!r}, not an ndarray")
    return numpy.ndarray.__new__(cls, shape, dtype_code)


_OPAQUE_CLASSES: dict[tuple[str, str], type] = {}


def _opaque_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _OPAQUE_CLASSES:
        _OPAQUE_CLASSES[key] = type(name, (Opaque,), {"qualified_name": f"{module}.{name}"})
    return _OPAQUE_CLASSES[key]


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle.Unpickler that imports nothing outside the allow-list (see module docstring)."""

    allowed = None  # filled on first use (importing numpy lazily)

    def find_class(self, module: str, name: str) -> Any:
        if RestrictedUnpickler.allowed is None:
            RestrictedUnpickler.allowed = _allowed_globals()
        # Python 2 pickles say __builtin__.set, copy_reg...; map them as pickle itself does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = RestrictedUnpickler.allowed.get((module, name))
        if found is not None:
            return found
        if module.startswith(OPAQUE_MODULE_PREFIXES) or module in ("fairseq", "omegaconf"):
            return _opaque_class(module, name)
        raise UnsafeCheckpointError(
            f"the checkpoint's pickle asks to import {module}.{name}, which is not on minirob's "
            "allow-list (tensors, containers, argparse.Namespace); refused without running it"
        )


def _load_one(file, **kwargs: Any) -> Any:
    """``pickle.load`` with the restricted unpickler (torch calls this for small records)."""
    return RestrictedUnpickler(file, **kwargs).load()


# What torch.load expects of its `pickle_module` argument: an Unpickler class and a load function.
PICKLE_MODULE = types.SimpleNamespace(
    __name__="minirob.safe_pickle", Unpickler=RestrictedUnpickler, load=_load_one
)


def check_zip_crc(path: Path) -> None:
    """Verify the CRC-32 that a zip-format torch file (torch >= 1.6) keeps for every record.

    ``torch.load`` does not check them, so a flipped bit among the tensor bytes would load as a
    silently different weight. A legacy (non-zip) pickle has no checksums to check.
    """
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every record, compares its CRC-32
    except Exception as error:  # BadZipFile, a damaged header's odd compression method, ...
        raise CheckpointError(f"{path}: corrupted zip structure ({type(error).__name__}: {error})") from None
    if bad is not None:
        raise CheckpointError(
            f"{path}: record {bad!r} fails its CRC-32 check; the file is corrupted (bad copy or disk?)"
        )


def safe_torch_load(path: str | os.PathLike) -> Any:
    """``torch.load`` of a pickled checkpoint (zip or legacy format) through the allow-list.

    Raises UnsafeCheckpointError for a file that would run code, CheckpointError for one that is
    empty, truncated or otherwise not a PyTorch file.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no checkpoint file at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty")
    if tarfile.is_tarfile(path):  # torch < 0.4's tar format: extracts files; not supported
        raise CheckpointError(f"{path}: a tar-format checkpoint (torch < 0.4) is not supported")
    check_zip_crc(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=PICKLE_MODULE)
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(f"{path}: {error}") from None
    except Exception as error:  # EOFError, UnpicklingError, RuntimeError from the zip reader...
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint; truncated or corrupted? "
            f"({type(error).__name__}: {text})"
        ) from None


def unwrap(value: Any) -> Any:
    """Turn Opaque stand-ins back into plain data where that is meaningful.

    An omegaconf ``DictConfig`` pickles its entries under ``_content`` (nodes holding ``_val``);
    an Enum member pickles as ``Class(value)``. Anything else stays Opaque.
    """
    if isinstance(value, Opaque):
        state = value.state
        if isinstance(state, dict):
            inner = state.get("__dict__", state)
            if isinstance(inner, dict) and "_content" in inner:
                return unwrap(inner["_content"])
            if isinstance(inner, dict) and "_val" in inner:
                return unwrap(inner["_val"])
        if state is None and len(value.args) == 1 and not value.kwargs:
            return unwrap(value.args[0])
        return value
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(item) for item in value)
    return value
