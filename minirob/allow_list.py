"""The allow-list of a checkpoint pickle: every global a pickle may name, and what the name gives.

:mod:`minirob.safe_pickle` runs the pickle's opcodes; this module decides what its ``GLOBAL``
opcodes resolve to. No name resolves to torch's or numpy's own rebuild functions: each resolves to
a checked stand-in defined here, which builds the same object after checking its arguments:

* **storages and tensors**: ``torch.FloatStorage`` & co. become :class:`StorageType` markers
  (not callable); a storage's bytes come from the file through a :class:`StorageTable`, whose
  total may not exceed the file's size; ``_rebuild_tensor_v2`` & co. make a view only if it fits
  inside its storage, with no stride 0, no backward hooks and no attributes to set;
* **numpy**: plain-number dtypes only (fresh copies, so BUILD on one changes nothing shared),
  scalars from exactly their bytes, arrays filled later by a checked BUILD;
* **plain constructors**: ``set``/``frozenset`` only of keys whose hashes cannot be made to collide
  (:func:`check_keys`), ``bytearray`` only from bytes, ``_codecs.encode`` only to latin-1, a
  ``defaultdict`` only with a container factory;
* classes of ``fairseq``/``omegaconf`` become :class:`Opaque` records, never imported.

:data:`CALLABLE` says which of these REDUCE may call, :data:`NEWOBJ_CLASSES` which classes NEWOBJ
may instantiate; :func:`describe` names any of them the way the pickle did, for error messages.
"""

from __future__ import annotations

import argparse
import codecs
import collections
import math
from typing import Any, Callable, Iterable

import numpy
import torch
from torch import Tensor

from .errors import CheckpointError, UnsafeCheckpointError, printable

MAX_DIMS = 32  # a tensor's dimensions
# Below this, hash(n) == n for an int, so distinct int keys cannot collide (hash(-1) == hash(-2)
# is the one exception, and one pair costs nothing).
HASH_SAFE_INT = 2**61 - 1


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


def is_opaque_module(module: str) -> bool:
    return module.startswith(OPAQUE_MODULE_PREFIXES) or module in ("fairseq", "omegaconf")


def opaque_class(module: str, name: str) -> type:
    """A new :class:`Opaque` subclass for ``module.name`` (the unpickler keeps one per load)."""
    return type(name, (Opaque,), {"qualified_name": f"{module}.{name}"})


def is_opaque_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, Opaque) and value is not Opaque


# ------------------------------------------------------------------ storages and tensor views
class StorageType:
    """What ``GLOBAL torch FloatStorage`` & co. unpickle to: a dtype marker, not callable."""

    def __init__(self, name: str, dtype: torch.dtype) -> None:
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"torch.{self.name}"


STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}


class Storage:
    """One storage of the file: its elements as a 1-D tensor (``numel`` of ``dtype``)."""

    def __init__(self, values: Tensor) -> None:
        self.values = values

    @property
    def numel(self) -> int:
        return self.values.numel()


class StorageTable:
    """Storages by key, each read once; their total size may not exceed the file's.

    ``fetch(key, nbytes)`` returns the storage's raw bytes as a uint8 tensor (read from a zip
    record, or allocated now and filled from a legacy file once its pickle is read).
    """

    def __init__(self, budget: int, fetch: Callable[[str, int], Tensor]) -> None:
        self.budget, self.fetch = budget, fetch
        self.storages: dict[str, tuple[torch.dtype, Storage]] = {}

    def get(self, storage_type: Any, key: Any, numel: Any) -> Storage:
        if not isinstance(storage_type, StorageType):
            raise UnsafeCheckpointError(f"a storage id names {describe(storage_type)}, not a "
                                        "torch storage type")
        if not isinstance(key, str) or not is_count(numel):
            raise CheckpointError("a storage id with a malformed key or element count")
        dtype = storage_type.dtype
        if key in self.storages:
            known_dtype, storage = self.storages[key]
            if known_dtype != dtype or storage.numel != numel:
                raise CheckpointError(f"storage {printable(key)!r} is described twice, differently")
            return storage
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        if nbytes > self.budget:
            raise CheckpointError(
                f"storage {printable(key)!r} would take {nbytes} bytes, more than the file holds "
                f"({self.budget} bytes left)"
            )
        self.budget -= nbytes
        raw = self.fetch(key, nbytes)  # uint8, nbytes long
        storage = Storage(raw.view(dtype) if nbytes else torch.empty(0, dtype=dtype))
        self.storages[key] = (dtype, storage)
        return storage


def is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list, torch.Size)) or len(value) > MAX_DIMS or \
            not all(is_count(v) for v in value):
        raise CheckpointError(f"a tensor's {what} is not a list of at most {MAX_DIMS} "
                              f"non-negative integers")
    return tuple(value)


def tensor_view(storage: Any, offset: Any, size: Any, stride: Any) -> Tensor:
    """The tensor ``size``/``stride``/``offset`` describe over ``storage``, if it fits inside it."""
    if not isinstance(storage, Storage):
        raise UnsafeCheckpointError(f"a tensor is rebuilt from {describe(storage)}, not from a "
                                    "storage of the file")
    size, stride = int_tuple(size, "size"), int_tuple(stride, "stride")
    if not is_count(offset) or len(size) != len(stride):
        raise CheckpointError("a tensor's offset, size and stride do not match")
    numel = math.prod(size)
    if numel:
        if any(n > 1 and step == 0 for n, step in zip(size, stride)):
            raise CheckpointError(
                f"a tensor of shape {list(size)} has stride 0 (one value repeated along a "
                "dimension): not a real weight; refused"
            )
        reach = offset + sum((n - 1) * step for n, step in zip(size, stride)) + 1
        if reach > storage.numel or numel > storage.numel:
            raise CheckpointError(
                f"a tensor of shape {list(size)} (strides {list(stride)}, offset {offset}) does "
                f"not fit in its storage of {storage.numel} elements"
            )
    elif offset > storage.numel:
        raise CheckpointError(f"an empty tensor starts at {offset}, past its storage's end")
    return storage.values.as_strided(size, stride, offset)


def _check_hooks(hooks: Any) -> None:
    if hooks is not None and not (type(hooks) in (dict, collections.OrderedDict) and not hooks):
        raise UnsafeCheckpointError("a tensor carries backward hooks (code to run); refused")


def empty_state(state: Any) -> bool:
    if isinstance(state, tuple):
        return all(empty_state(part) for part in state)
    return state is None or (type(state) is dict and not state)


def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                      backward_hooks=None, metadata=None) -> Tensor:
    """Checked stand-in for ``torch._utils._rebuild_tensor_v2``."""
    tensor = tensor_view(storage, storage_offset, size, stride)
    _check_hooks(backward_hooks)
    if not empty_state(metadata) or type(requires_grad) is not bool:
        raise CheckpointError("a tensor with unsupported metadata or a non-boolean requires_grad")
    if requires_grad:
        if not (tensor.is_floating_point() or tensor.is_complex()):
            raise CheckpointError(f"an integer tensor ({tensor.dtype}) cannot require gradients")
        tensor.requires_grad_(True)
    return tensor


def rebuild_tensor(storage, storage_offset, size, stride) -> Tensor:
    """Checked stand-in for ``torch._utils._rebuild_tensor`` (older files)."""
    return tensor_view(storage, storage_offset, size, stride)


def rebuild_parameter(data, requires_grad, backward_hooks) -> torch.nn.Parameter:
    """Checked stand-in for ``torch._utils._rebuild_parameter``."""
    if type(data) is not Tensor or type(requires_grad) is not bool:
        raise CheckpointError("a parameter rebuilt from something other than a tensor")
    _check_hooks(backward_hooks)
    return torch.nn.Parameter(data, requires_grad)


def rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    """``_rebuild_parameter_with_state``: only with no state (attributes would be set on it)."""
    if not empty_state(state):
        raise UnsafeCheckpointError("a parameter carries attributes to set; refused")
    return rebuild_parameter(data, requires_grad, backward_hooks)


TENSOR_REBUILDERS = (rebuild_tensor_v2, rebuild_tensor, rebuild_parameter,
                     rebuild_parameter_with_state)


def rebuild_from_type_v2(func, new_type, args, state):
    """``torch._tensor._rebuild_from_type_v2``: a plain tensor or parameter, with no state."""
    if not any(func is f for f in TENSOR_REBUILDERS) or type(args) is not tuple or \
            new_type not in (Tensor, torch.nn.Parameter) or not empty_state(state):
        raise UnsafeCheckpointError("a tensor of a custom type or with attributes to set; refused")
    tensor = func(*args)
    if new_type is torch.nn.Parameter and type(tensor) is not torch.nn.Parameter:
        tensor = torch.nn.Parameter(tensor, tensor.requires_grad)
    return tensor


def _torch_size(dims: Any = ()) -> torch.Size:
    return torch.Size(int_tuple(dims, "size"))


# ------------------------------------------------------------------ keys, sets and constructors
def check_keys(keys: Iterable) -> None:
    """Refuse dict keys / set members whose hashes a file could make collide.

    A dict of n keys with one hash costs n**2/2 comparisons to build: strings and bytes hash with a
    per-process secret, but ints, tuples and complex numbers hash by formula (``2**61 - 1`` and
    ``2 * (2**61 - 1)`` collide). Real checkpoints key by name (str) or by small int (an optimizer's
    parameter index); floats, booleans and None are admitted too (few of them can share a hash).
    """
    for key in keys:
        kind = type(key)
        if kind is int and -HASH_SAFE_INT < key < HASH_SAFE_INT:
            continue
        if kind not in (str, bytes, float, bool, type(None)):
            raise CheckpointError(
                f"a dict key or set member of type {kind.__name__}"
                f"{' beyond 2**61' if kind is int else ''}; only names and small numbers are "
                "accepted (others can be made to share a hash, and cost quadratic time to store)"
            )


def _set(items: Any = ()) -> set:
    """``set(items)``, as protocol-2 pickles build sets; checked keys only."""
    if type(items) not in (list, tuple):
        raise CheckpointError("pickle builds a set from something other than a list")
    check_keys(items)
    return set(items)


def _frozenset(items: Any = ()) -> frozenset:
    if type(items) not in (list, tuple):
        raise CheckpointError("pickle builds a frozenset from something other than a list")
    check_keys(items)
    return frozenset(items)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``; only that one codec."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UnsafeCheckpointError(f"pickle asked for _codecs.encode with codec "
                                    f"{printable(encoding)!r}")
    return codecs.encode(text, encoding)


def _bytearray(source: Any = b"", encoding: Any = None) -> bytearray:
    """``bytearray`` from bytes or a latin-1 string; never from a count (``bytearray(10**12)``)."""
    if isinstance(source, bytes) and encoding is None:
        return bytearray(source)
    if isinstance(source, str) and encoding in ("latin1", "latin-1"):
        return bytearray(source, encoding)
    raise CheckpointError("pickle builds a bytearray from something other than bytes")


_DEFAULT_FACTORIES = {id(_set): set, id(_frozenset): frozenset,
                      id(collections.OrderedDict): collections.OrderedDict}


def _defaultdict(factory: Any = None, *rest: Any) -> collections.defaultdict:
    if rest or not (factory is None or id(factory) in _DEFAULT_FACTORIES):
        raise UnsafeCheckpointError(f"a defaultdict whose factory is {describe(factory)}")
    return collections.defaultdict(factory and _DEFAULT_FACTORIES[id(factory)])


def _namespace(*args: Any) -> argparse.Namespace:
    if args:
        raise CheckpointError("argparse.Namespace called with positional arguments")
    return argparse.Namespace()


# ------------------------------------------------------------------ numpy
def plain_dtype(dtype: Any) -> numpy.dtype:
    """``dtype`` if it is a plain number type (bool, int, float, complex); refused otherwise."""
    if not isinstance(dtype, numpy.dtype) or dtype.kind not in "biufc" or dtype.hasobject or \
            dtype.fields is not None or dtype.subdtype is not None:
        raise UnsafeCheckpointError(f"numpy data of dtype {printable(dtype)} (objects, records, "
                                    "strings or raw bytes); only plain numbers are read")
    return dtype


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = True) -> numpy.dtype:
    """``numpy.dtype(spec)`` as a fresh copy (BUILD on numpy's shared dtype would change it)."""
    if not isinstance(spec, str) or type(align) is not bool:
        raise CheckpointError("a numpy dtype described by something other than a type code")
    try:
        return plain_dtype(numpy.dtype(spec, align, True))
    except TypeError:
        raise CheckpointError(f"unknown numpy dtype {printable(spec)!r}") from None


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """numpy's scalar constructor, refusing object dtype (which would smuggle in a pickle)."""
    dtype = plain_dtype(dtype)
    if data is None:
        return dtype.type()
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise CheckpointError(f"a numpy {dtype} scalar with {printable(repr(data)[:40])} as its "
                              "bytes")
    return numpy.frombuffer(data, dtype=dtype)[0]


def _numpy_reconstruct(cls: Any, shape: Any, dtype_code: Any) -> numpy.ndarray:
    """An empty array, filled by the BUILD that follows (checked by the unpickler)."""
    if cls is not numpy.ndarray:
        raise UnsafeCheckpointError(f"pickle asked numpy to rebuild a {describe(cls)}, not an "
                                    "ndarray")
    return numpy.ndarray.__new__(numpy.ndarray, (0,), numpy.uint8)


# ------------------------------------------------------------------ the table
_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
# (module, name) -> what GLOBAL gives for it. Real classes appear only where calling or
# instantiating them is harmless and checked by the unpickler; functions are the stand-ins above.
ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): _defaultdict,
    ("builtins", "set"): _set,
    ("builtins", "frozenset"): _frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): _bytearray,
    ("_codecs", "encode"): _latin1_encode,
    ("argparse", "Namespace"): argparse.Namespace,
    ("torch", "Size"): _torch_size,
    ("torch", "Tensor"): Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type_v2,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter_with_state,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy", "ndarray"): numpy.ndarray,
    **{(module, "scalar"): _numpy_scalar for module in _NUMPY_CORE},
    **{(module, "_reconstruct"): _numpy_reconstruct for module in _NUMPY_CORE},
    **{("torch", name): value for name, value in vars(torch).items()
       if isinstance(value, torch.dtype)},
    **{(module, name): StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()
       for module in ("torch", "torch.cuda")},
}
# What REDUCE may call (argparse.Namespace goes through _namespace), and which classes NEWOBJ may
# instantiate (besides Opaque stand-ins).
CALLABLE = {id(f) for f in (
    collections.OrderedDict, _defaultdict, _set, _frozenset, slice, complex, _bytearray,
    _latin1_encode, _namespace, _torch_size, rebuild_from_type_v2, *TENSOR_REBUILDERS,
    _numpy_dtype, _numpy_scalar, _numpy_reconstruct)}
NEWOBJ_CLASSES = (argparse.Namespace, collections.OrderedDict)


def callable_for(func: Any) -> Callable | None:
    """What REDUCE calls for ``func`` (None: ``func`` may be named but not called)."""
    if func is argparse.Namespace:
        return _namespace
    return func if id(func) in CALLABLE or is_opaque_class(func) else None


# id -> the name a pickle uses for it (messages name torch's function, not minirob's stand-in).
_PICKLE_NAMES = {id(value): f"{module}.{name}" for (module, name), value in ALLOWED.items()}


def describe(value: Any) -> str:
    """A short, escaped name for ``value`` in an error message."""
    if id(value) in _PICKLE_NAMES:
        return _PICKLE_NAMES[id(value)]
    if is_opaque_class(value):
        return printable(value.qualified_name)
    if isinstance(value, type) or callable(value):
        return printable(f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', '?')}")
    return printable(f"an instance of {type(value).__module__}.{type(value).__qualname__}")
