"""Reading pickled checkpoints without running the code they might carry, and in bounded work.

A ``.pt`` / ``.bin`` file is a Python pickle, and a pickle is a small program: ``GLOBAL`` names any
importable object, ``REDUCE``/``NEWOBJ`` call it, ``BUILD`` sets attributes on what was built, and
persistent ids let the loader do anything it likes. ``torch.load`` is therefore never given an
untrusted file here (not even with ``weights_only=True``, which still sends a TorchScript zip to
``torch.jit.load``). :mod:`minirob.containers` recognises the container; this module unpickles it
with a pure-Python unpickler whose every door is checked:

* **GLOBAL** (``find_class``) returns only allow-listed names, and for torch's and numpy's rebuild
  functions it returns minirob's own checked versions, never the real globals: plain containers,
  ``argparse.Namespace``, torch dtypes and storage types, numpy arrays and scalars (fairseq keeps
  some metrics as numpy floats; minirob's resume checkpoints hold numpy's RNG state). Classes from
  ``fairseq``/``omegaconf`` become inert :class:`Opaque` records (never imported). Anything else
  raises :class:`~minirob.errors.UnsafeCheckpointError` before it is imported.
* **REDUCE / NEWOBJ** may call only the constructors in :data:`_CALLABLE` (``torch.Tensor`` itself,
  say, is allow-listed as a *type* for ``_rebuild_from_type_v2`` but may not be called).
  ``INST``/``OBJ`` (protocol 0/1 object building, which torch never writes) are refused.
* **BUILD** (``__setstate__`` / slot state) is accepted only in the shapes real files use, and
  only on an *instance* built by this same pickle -- never on an allow-listed function or class,
  so nothing can mutate a global (``_rebuild_tensor_v2.__defaults__`` poisoning):

  - ``argparse.Namespace``: a plain dict of string names, none of them ``__dunder__`` (fairseq's
    training arguments); no slot state;
  - ``collections.OrderedDict``: ``{"_metadata": ...}`` (every ``state_dict()`` carries it);
  - numpy arrays: ``(1, shape, dtype, is_fortran, raw bytes)`` with the bytes matching the shape;
    numpy dtypes: exactly the state the dtype already has (so BUILD changes nothing);
  - :class:`Opaque` stand-ins: any state, recorded as data.
* **Persistent ids** must be ``('storage', <torch storage type>, key, location, numel)`` (zip) or
  the legacy ``(..., numel, None)``; ``('module', ...)``, which makes torch's legacy loader write
  ``.patch`` files, is refused. Each storage's bytes come from the file, sized against it.
* **APPEND / SETITEM / ADDITEMS** only on lists / dicts / sets, and never on a container already
  placed inside another (honest pickles fill a container before using it; only a recursive or
  re-opened one would, and that is how cost accounting is fooled).

Bounded work: every container's *expanded* item count and nesting depth is tracked as it is built
(a DAG of shared lists counts every path, as the code walking it later would), and the load is
refused past :data:`MAX_DEPTH` levels or :data:`MAX_ITEMS` items, or once the items copied into
containers pass :data:`MAX_WORK`. All storages together may not exceed the file's size, and a
tensor view must fit inside its storage, with no stride 0 (one value repeated is not a weight).
"""

from __future__ import annotations

import _compat_pickle
import argparse
import codecs
import collections
import io
import math
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy
import torch
from torch import Tensor

from .containers import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    LegacyFile,
    ZipCheckpoint,
    container_kind,
    escaped,
)
from .errors import CheckpointError, MissingFileError, UnsafeCheckpointError

MAX_DEPTH = 64  # containers inside containers; real checkpoints nest fewer than 10 levels
MAX_ITEMS = 2_000_000  # expanded items under any one object (fairseq's checkpoints: ~10,000)
MAX_WORK = 20_000_000  # items copied into containers in one load (hashing, later walks)
MAX_DIMS = 32  # a tensor's dimensions


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
_OPAQUE_CLASSES: dict[tuple[str, str], type] = {}


def _opaque_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _OPAQUE_CLASSES:
        _OPAQUE_CLASSES[key] = type(name, (Opaque,), {"qualified_name": f"{module}.{name}"})
    return _OPAQUE_CLASSES[key]


# ------------------------------------------------------------------ storages and tensor rebuilding
class StorageType:
    """What ``GLOBAL torch FloatStorage`` & co. unpickle to: a dtype marker, not callable."""

    def __init__(self, name: str, dtype: torch.dtype) -> None:
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"torch.{self.name}"


_STORAGE_DTYPES = {
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
    """Storages by key, each read once; their total size may not exceed the file's."""

    def __init__(self, path: Path, budget: int, fetch: Callable[[str, int], Tensor]) -> None:
        self.path, self.budget, self.fetch = path, budget, fetch
        self.storages: dict[str, tuple[torch.dtype, Storage]] = {}

    def get(self, storage_type: Any, key: Any, numel: Any) -> Storage:
        if not isinstance(storage_type, StorageType):
            raise UnsafeCheckpointError(f"a storage id names {_describe(storage_type)}, not a "
                                        "torch storage type")
        if not isinstance(key, str) or not _is_count(numel):
            raise CheckpointError("a storage id with a malformed key or element count")
        dtype = storage_type.dtype
        if key in self.storages:
            known_dtype, storage = self.storages[key]
            if known_dtype != dtype or storage.numel != numel:
                raise CheckpointError(f"storage {escaped(key)!r} is described twice, differently")
            return storage
        element_size = torch.empty((), dtype=dtype).element_size()
        nbytes = numel * element_size
        if nbytes > self.budget:
            raise CheckpointError(
                f"storage {escaped(key)!r} would take {nbytes} bytes, more than the file holds "
                f"({self.budget} bytes left)"
            )
        self.budget -= nbytes
        raw = self.fetch(key, nbytes)  # uint8, nbytes long
        storage = Storage(raw.view(dtype) if nbytes else torch.empty(0, dtype=dtype))
        self.storages[key] = (dtype, storage)
        return storage


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list, torch.Size)) or len(value) > MAX_DIMS or \
            not all(_is_count(v) for v in value):
        raise CheckpointError(f"a tensor's {what} is not a list of at most {MAX_DIMS} "
                              f"non-negative integers")
    return tuple(value)


def _tensor_view(storage: Any, offset: Any, size: Any, stride: Any) -> Tensor:
    """The tensor ``size``/``stride``/``offset`` describe over ``storage``, if it fits inside it."""
    if not isinstance(storage, Storage):
        raise UnsafeCheckpointError(f"a tensor is rebuilt from {_describe(storage)}, not from a "
                                    "storage of the file")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if not _is_count(offset) or len(size) != len(stride):
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


def _empty_state(state: Any) -> bool:
    if isinstance(state, tuple):
        return all(_empty_state(part) for part in state)
    return state is None or (type(state) is dict and not state)


def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                      backward_hooks=None, metadata=None) -> Tensor:
    """Checked stand-in for ``torch._utils._rebuild_tensor_v2``."""
    tensor = _tensor_view(storage, storage_offset, size, stride)
    _check_hooks(backward_hooks)
    if not _empty_state(metadata) or type(requires_grad) is not bool:
        raise CheckpointError("a tensor with unsupported metadata or a non-boolean requires_grad")
    if requires_grad:
        if not (tensor.is_floating_point() or tensor.is_complex()):
            raise CheckpointError(f"an integer tensor ({tensor.dtype}) cannot require gradients")
        tensor.requires_grad_(True)
    return tensor


def rebuild_tensor(storage, storage_offset, size, stride) -> Tensor:
    """Checked stand-in for ``torch._utils._rebuild_tensor`` (older files)."""
    return _tensor_view(storage, storage_offset, size, stride)


def rebuild_parameter(data, requires_grad, backward_hooks) -> torch.nn.Parameter:
    """Checked stand-in for ``torch._utils._rebuild_parameter``."""
    if type(data) is not Tensor or type(requires_grad) is not bool:
        raise CheckpointError("a parameter rebuilt from something other than a tensor")
    _check_hooks(backward_hooks)
    return torch.nn.Parameter(data, requires_grad)


def rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    """``_rebuild_parameter_with_state``: only with no state (attributes would be set on it)."""
    if not _empty_state(state):
        raise UnsafeCheckpointError("a parameter carries attributes to set; refused")
    return rebuild_parameter(data, requires_grad, backward_hooks)


_TENSOR_REBUILDERS = (rebuild_tensor_v2, rebuild_tensor, rebuild_parameter,
                      rebuild_parameter_with_state)


def rebuild_from_type_v2(func, new_type, args, state):
    """``torch._tensor._rebuild_from_type_v2``: a plain tensor or parameter, with no state."""
    if not any(func is f for f in _TENSOR_REBUILDERS) or type(args) is not tuple or \
            new_type not in (Tensor, torch.nn.Parameter) or not _empty_state(state):
        raise UnsafeCheckpointError("a tensor of a custom type or with attributes to set; refused")
    tensor = func(*args)
    if new_type is torch.nn.Parameter and type(tensor) is not torch.nn.Parameter:
        tensor = torch.nn.Parameter(tensor, tensor.requires_grad)
    return tensor


# ------------------------------------------------------------------ other checked constructors
def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``; only that one codec."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UnsafeCheckpointError(f"pickle asked for _codecs.encode with codec "
                                    f"{escaped(encoding)!r}")
    return codecs.encode(text, encoding)


def _bytearray(source: Any = b"", encoding: Any = None) -> bytearray:
    """``bytearray`` from bytes or a latin-1 string; never from a count (``bytearray(10**12)``)."""
    if isinstance(source, bytes) and encoding is None:
        return bytearray(source)
    if isinstance(source, str) and encoding in ("latin1", "latin-1"):
        return bytearray(source, encoding)
    raise CheckpointError("pickle builds a bytearray from something other than bytes")


def _defaultdict(factory: Any = None, *rest: Any) -> collections.defaultdict:
    if rest or not (factory is None or factory in (set, frozenset, collections.OrderedDict)):
        raise UnsafeCheckpointError(f"a defaultdict whose factory is {_describe(factory)}")
    return collections.defaultdict(factory)


def _plain_dtype(dtype: Any) -> numpy.dtype:
    if not isinstance(dtype, numpy.dtype) or dtype.hasobject or dtype.fields is not None or \
            dtype.subdtype is not None:
        raise UnsafeCheckpointError(f"numpy data of dtype {escaped(dtype)} (objects or records); "
                                    "only plain numbers are read")
    return dtype


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = True) -> numpy.dtype:
    """``numpy.dtype(spec)`` as a fresh copy (BUILD on numpy's shared dtype would change it)."""
    if not isinstance(spec, str) or type(align) is not bool:
        raise CheckpointError("a numpy dtype described by something other than a type code")
    try:
        return _plain_dtype(numpy.dtype(spec, align, True))
    except TypeError:
        raise CheckpointError(f"unknown numpy dtype {escaped(spec)!r}") from None


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """numpy's scalar constructor, refusing object dtype (which would smuggle in a pickle)."""
    dtype = _plain_dtype(dtype)
    if data is None:
        return dtype.type()
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise CheckpointError(f"a numpy {dtype} scalar with {escaped(repr(data)[:40])} as its bytes")
    return numpy.frombuffer(data, dtype=dtype)[0]


def _numpy_reconstruct(cls: Any, shape: Any, dtype_code: Any) -> numpy.ndarray:
    if cls is not numpy.ndarray:
        raise UnsafeCheckpointError(f"pickle asked numpy to rebuild a {_describe(cls)}, not an "
                                    "ndarray")
    return numpy.ndarray.__new__(numpy.ndarray, (0,), numpy.uint8)


def _torch_size(dims: Any = ()) -> torch.Size:
    return torch.Size(_int_tuple(dims, "size"))


def _namespace(*args: Any) -> argparse.Namespace:
    if args:
        raise CheckpointError("argparse.Namespace called with positional arguments")
    return argparse.Namespace()


# (module, name) -> what GLOBAL gives for it. Real classes appear only where calling or
# instantiating them is harmless and checked below; torch's rebuild functions are replaced.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): _defaultdict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
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
    **{(module, "scalar"): _numpy_scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "_reconstruct"): _numpy_reconstruct
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{("torch", name): value for name, value in vars(torch).items() if isinstance(value, torch.dtype)},
    **{(module, name): StorageType(name, dtype) for name, dtype in _STORAGE_DTYPES.items()
       for module in ("torch", "torch.cuda")},
}
# What REDUCE may call, and which classes NEWOBJ may instantiate (besides Opaque stand-ins).
_CALLABLE = {id(f) for f in (
    collections.OrderedDict, _defaultdict, set, frozenset, slice, complex, _bytearray,
    _latin1_encode, _namespace, _torch_size, rebuild_from_type_v2, *_TENSOR_REBUILDERS,
    _numpy_dtype, _numpy_scalar, _numpy_reconstruct)}
_NEWOBJ_CLASSES = (argparse.Namespace, collections.OrderedDict)


# id -> the name a pickle uses for it (messages name torch's function, not minirob's stand-in).
_PICKLE_NAMES = {id(value): f"{module}.{name}" for (module, name), value in _ALLOWED.items()}


def _describe(value: Any) -> str:
    """A short, escaped name for ``value`` in an error message."""
    if id(value) in _PICKLE_NAMES:
        return _PICKLE_NAMES[id(value)]
    if _is_opaque_class(value):
        return escaped(value.qualified_name)
    if isinstance(value, type) or callable(value):
        return escaped(f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', '?')}")
    return escaped(f"an instance of {type(value).__module__}.{type(value).__qualname__}")


def _is_opaque_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, Opaque) and value is not Opaque


# ------------------------------------------------------------------ the unpickler
_LEAVES = (str, bytes, int, float, bool, type(None), complex, Tensor, torch.dtype, Storage)
_op = {name: getattr(pickle, name)[0] for name in (
    "BUILD", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ", "APPEND", "APPENDS", "SETITEM",
    "SETITEMS", "ADDITEMS", "LIST", "DICT", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "FROZENSET",
    "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER")}


class RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with every door checked (see the module docstring).

    It is the pure-Python one because the C unpickler cannot be told how to BUILD, REDUCE or
    APPEND; ``data.pkl`` is small (the tensors' bytes are elsewhere), so speed is not an issue.
    ``persistent_load`` resolves storage ids through ``storages`` (None: no tensors allowed).
    """

    def __init__(self, file, storages: StorageTable | None = None, legacy_ids: bool = False,
                 tensors_only: bool = False) -> None:
        super().__init__(file, encoding="utf-8")
        self.storages, self.legacy_ids, self.tensors_only = storages, legacy_ids, tensors_only
        self.costs: dict[int, tuple[int, int]] = {}  # id -> (expanded items, depth)
        self.sealed: set[int] = set()  # ids of containers already placed inside another
        self.keep: dict[int, Any] = {}  # every object above stays alive: its id stays its own
        self.work = 0

    # -- GLOBAL
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names: __builtin__.set ...
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        key = (module, name)
        found = _ALLOWED.get(key)
        if found is not None and (not self.tensors_only or module.startswith("torch")
                                  or key == ("collections", "OrderedDict")):
            return found
        if not self.tensors_only and (module.startswith(OPAQUE_MODULE_PREFIXES)
                                      or module in ("fairseq", "omegaconf")):
            return _opaque_class(module, name)
        where = ("the tensors-only allow-list of a weights file (what weights_only=True "
                 "admits)") if self.tensors_only else "minirob's allow-list"
        raise UnsafeCheckpointError(
            f"the pickle asks for GLOBAL {escaped(module)}.{escaped(name)}, which is not on "
            f"{where}; refused before importing or running it"
        )

    # -- persistent ids: storages only
    def persistent_load(self, pid: Any) -> Storage:
        length = 6 if self.legacy_ids else 5
        kind = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
        if self.storages is None or not isinstance(pid, tuple) or len(pid) != length or \
                kind != "storage" or (self.legacy_ids and pid[5] is not None) or \
                not isinstance(pid[3], str):
            raise UnsafeCheckpointError(
                f"the pickle holds a persistent id of kind {escaped(repr(kind))[:60]}; only "
                "('storage', type, key, location, size) ids of tensor storages are accepted"
            )
        return self.storages.get(pid[1], pid[2], pid[4])

    # -- cost accounting
    def cost(self, value: Any) -> tuple[int, int]:
        return (1, 0) if isinstance(value, _LEAVES) else self.costs.get(id(value), (1, 0))

    def add(self, container: Any, children) -> None:
        """Count ``children`` into ``container`` (new, or not yet placed in another container)."""
        if id(container) in self.sealed:
            raise CheckpointError("the pickle adds to a container after placing it inside "
                                  "another (a recursive or re-opened container); refused")
        items, depth = self.costs.get(id(container), (1, 1))
        for child in children:
            if child is container:
                raise CheckpointError("the pickle puts a container inside itself; refused")
            child_items, child_depth = self.cost(child)
            items += child_items
            depth = max(depth, child_depth + 1)
            self.work += child_items
            if not isinstance(child, _LEAVES):
                self.sealed.add(id(child))
                self.keep[id(child)] = child
        if depth > MAX_DEPTH:
            raise CheckpointError(f"containers nested more than {MAX_DEPTH} deep; refused")
        if items > MAX_ITEMS or self.work > MAX_WORK:
            raise CheckpointError(
                f"the pickle expands to more than {MAX_ITEMS if items > MAX_ITEMS else MAX_WORK} "
                "items (shared containers counted at every place they appear); refused"
            )
        self.keep[id(container)] = container
        self.costs[id(container)] = (items, depth)

    # -- opcodes building containers
    def load_tuple_n(self, count: int) -> None:
        items = tuple(self.stack[-count:])
        del self.stack[-count:]
        self.add(items, items)
        self.append(items)

    def load_tuple(self) -> None:
        items = tuple(self.pop_mark())
        self.add(items, items)
        self.append(items)

    def load_list(self) -> None:
        items = self.pop_mark()
        self.add(items, items)
        self.append(items)

    def _from_items(self, build: Callable[[list], Any]) -> None:
        """DICT / FROZENSET: the items are counted before ``build`` hashes them (a key made of
        shared tuples would cost its expanded size to hash)."""
        items = self.pop_mark()
        self.add(items, items)
        value = build(items)
        self.costs[id(value)] = self.costs.pop(id(items))
        self.keep[id(value)] = value
        self.append(value)

    def load_dict(self) -> None:
        self._from_items(lambda items: {items[i]: items[i + 1] for i in range(0, len(items) - 1, 2)})

    def load_frozenset(self) -> None:
        self._from_items(frozenset)

    def load_append(self) -> None:
        value = self.stack.pop()
        self._grow(list, [value])
        self.stack[-1].append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._grow(list, items)
        self.stack[-1].extend(items)

    def load_setitem(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        self._grow(dict, [key, value])
        self.stack[-1][key] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        self._grow(dict, items)
        target = self.stack[-1]
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]

    def load_additems(self) -> None:
        items = self.pop_mark()
        self._grow(set, items)
        self.stack[-1].update(items)

    def _grow(self, kind: type, items: list) -> None:
        target = self.stack[-1] if self.stack else None
        if not isinstance(target, kind) or isinstance(target, (Tensor, numpy.ndarray)):
            raise UnsafeCheckpointError(f"the pickle adds items to {_describe(target)}, not a "
                                        f"{kind.__name__}")
        self.add(target, items)

    # -- opcodes calling things
    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if id(func) not in _CALLABLE and func is not argparse.Namespace and \
                not _is_opaque_class(func):
            raise UnsafeCheckpointError(f"the pickle calls {_describe(func)}, which it may only "
                                        "name, not call; refused")
        if type(args) is not tuple:
            raise CheckpointError("REDUCE with arguments that are not a tuple")
        value = (_namespace if func is argparse.Namespace else func)(*args)
        self.stack[-1] = value
        if not isinstance(value, _LEAVES):
            self.add(value, args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack[-1]
        if not (cls in _NEWOBJ_CLASSES or _is_opaque_class(cls)) or type(args) is not tuple or \
                (args and not _is_opaque_class(cls)):
            raise UnsafeCheckpointError(f"the pickle instantiates {_describe(cls)}; refused")
        value = cls.__new__(cls, *args)
        self.stack[-1] = value
        self.add(value, args)

    def load_newobj_ex(self) -> None:
        raise UnsafeCheckpointError("the pickle uses NEWOBJ_EX (keyword construction), which "
                                    "torch never writes; refused")

    def load_inst_or_obj(self) -> None:
        raise UnsafeCheckpointError("the pickle uses INST/OBJ (protocol 0/1 object building), "
                                    "which torch never writes; refused")

    def load_refused_buffer(self) -> None:
        raise CheckpointError("the pickle uses out-of-band or 8-byte-length buffers, which torch "
                              "never writes; refused")

    # -- BUILD: state only in the shapes real files use, only on instances
    def load_build(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        kind = type(target)
        if isinstance(target, Opaque) and not isinstance(target, type):
            self.add(target, [state])
            target.__setstate__(state)
        elif kind is argparse.Namespace and type(state) is dict and all(
                isinstance(k, str) and not (k.startswith("__") and k.endswith("__")) for k in state):
            self.add(target, [state])
            vars(target).update(state)
        elif kind is collections.OrderedDict and type(state) is dict and set(state) <= {"_metadata"}:
            self.add(target, [state])
            vars(target).update(state)
        elif kind is numpy.ndarray and self._array_state_ok(state):
            self.add(target, [state])
            target.__setstate__(state)
        elif isinstance(target, numpy.dtype) and state == target.__reduce__()[2]:
            pass  # the state the dtype already has: nothing to set
        else:
            raise UnsafeCheckpointError(
                f"the pickle sets state on {_describe(target)} (BUILD with "
                f"{_describe(state)}); only argparse.Namespace, an OrderedDict's _metadata, "
                "numpy arrays and fairseq stand-ins accept state, in their usual shapes"
            )

    @staticmethod
    def _array_state_ok(state: Any) -> bool:
        if type(state) is not tuple or len(state) != 5:
            return False
        version, shape, dtype, fortran, raw = state
        try:
            dtype = _plain_dtype(dtype)
            shape = _int_tuple(shape, "size")
        except CheckpointError:
            return False
        return version == 1 and type(fortran) is bool and isinstance(raw, bytes) and \
            len(raw) == math.prod(shape) * dtype.itemsize

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[_op["BUILD"]] = load_build
    dispatch[_op["REDUCE"]] = load_reduce
    dispatch[_op["NEWOBJ"]] = load_newobj
    dispatch[_op["NEWOBJ_EX"]] = load_newobj_ex
    dispatch[_op["INST"]] = load_inst_or_obj
    dispatch[_op["OBJ"]] = load_inst_or_obj
    dispatch[_op["APPEND"]] = load_append
    dispatch[_op["APPENDS"]] = load_appends
    dispatch[_op["SETITEM"]] = load_setitem
    dispatch[_op["SETITEMS"]] = load_setitems
    dispatch[_op["ADDITEMS"]] = load_additems
    dispatch[_op["LIST"]] = load_list
    dispatch[_op["DICT"]] = load_dict
    dispatch[_op["TUPLE"]] = load_tuple
    dispatch[_op["TUPLE1"]] = lambda self: self.load_tuple_n(1)
    dispatch[_op["TUPLE2"]] = lambda self: self.load_tuple_n(2)
    dispatch[_op["TUPLE3"]] = lambda self: self.load_tuple_n(3)
    dispatch[_op["FROZENSET"]] = load_frozenset
    for _name in ("BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"):
        dispatch[_op[_name]] = load_refused_buffer


# ------------------------------------------------------------------ the two containers
def _load_zip(path: Path, tensors_only: bool) -> Any:
    archive = ZipCheckpoint(path)
    try:
        swap = archive.byteorder != "little"
        table = StorageTable(path, archive.file_size,
                             lambda key, nbytes: archive.storage(key, nbytes))
        data = archive.pickle_bytes()
        value = RestrictedUnpickler(io.BytesIO(data), table, tensors_only=tensors_only).load()
        if swap:
            for _, storage in table.storages.values():
                _to_native_order(storage.values)
        return value
    finally:
        archive.close()


def _to_native_order(values: Tensor) -> None:
    """Swap a big-endian storage's bytes in place (complex numbers: each half on its own)."""
    size = values.element_size() // (2 if values.is_complex() else 1)
    if size > 1:
        raw = values.view(torch.uint8).view(-1, size)
        raw.copy_(raw.flip(1))


def _load_legacy(path: Path, tensors_only: bool) -> Any:
    legacy = LegacyFile(path)
    try:
        def header() -> Any:
            return RestrictedUnpickler(legacy, tensors_only=True).load()

        if header() != LEGACY_MAGIC_NUMBER:
            raise CheckpointError(
                f"{path}: a plain pickle, not a file torch.save wrote (no torch magic number); "
                "refused"
            )
        if header() != LEGACY_PROTOCOL_VERSION:
            raise CheckpointError(f"{path}: unknown legacy torch protocol version")
        system = header()
        if not isinstance(system, dict) or system.get("little_endian") is not True:
            raise CheckpointError(f"{path}: a legacy file from a big-endian machine (or without "
                                  "its system record) is not supported")
        pending: list[tuple[str, Tensor]] = []

        def allocate(key: str, nbytes: int) -> Tensor:
            buffer = torch.empty(nbytes, dtype=torch.uint8)  # filled once the pickle is read
            pending.append((key, buffer))
            return buffer

        table = StorageTable(path, legacy.size, allocate)
        value = RestrictedUnpickler(legacy, table, legacy_ids=True, tensors_only=tensors_only).load()
        keys = header()
        if not isinstance(keys, list) or sorted(keys) != sorted(table.storages) or \
                len(set(keys)) != len(keys):
            raise CheckpointError(f"{path}: the list of storages does not match the pickle's")
        buffers = dict(pending)
        for key in keys:
            _, storage = table.storages[key]
            legacy.fill(key, buffers[key], storage.numel, storage.values.element_size())
        return value
    finally:
        legacy.close()


def _load(path: str | os.PathLike, tensors_only: bool) -> Any:
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no checkpoint file at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty")
    kind = container_kind(path)
    try:
        return (_load_zip if kind == "zip" else _load_legacy)(path, tensors_only)
    except CheckpointError as error:
        text = str(error)
        if str(path) in text:
            raise
        raise type(error)(f"{path}: {text}") from None
    except Exception as error:  # EOFError, UnpicklingError, BadZipFile (CRC), a wrong type...
        text = str(error).splitlines()[0] if str(error) else ""
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint; truncated or corrupted? "
            f"({type(error).__name__}: {escaped(text)[:200]})"
        ) from None


def safe_torch_load(path: str | os.PathLike) -> Any:
    """Load a checkpoint ``torch.save`` wrote (zip or legacy format), tensors on the CPU.

    Raises UnsafeCheckpointError for a file that would run code or mutate anything, and
    CheckpointError for one that is empty, truncated, not a PyTorch file, or too costly to read.
    """
    return _load(path, tensors_only=False)


def load_tensor_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """A weights file such as ``pytorch_model.bin``: a dict of tensors and nothing else.

    The allow-list shrinks to tensors, dtypes and ``OrderedDict`` (what ``weights_only=True``
    admits); a ``{"state_dict": {...}}`` wrapper is unwrapped.
    """
    state = _load(path, tensors_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    return state


def check_zip_crc(path: Path) -> None:
    """Verify the CRC-32 that a zip-format torch file (torch >= 1.6) keeps for every record.

    minirob's own loaders check each record they read; this checks the whole file at once.
    """
    import zipfile

    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every record, compares its CRC-32
    except Exception as error:  # BadZipFile, a damaged header's odd compression method, ...
        raise CheckpointError(f"{path}: corrupted zip structure ({type(error).__name__}: "
                              f"{escaped(error)})") from None
    if bad is not None:
        raise CheckpointError(
            f"{path}: record {escaped(bad)!r} fails its CRC-32 check; the file is corrupted "
            "(bad copy or disk?)"
        )


def unwrap(value: Any) -> Any:
    """Turn Opaque stand-ins back into plain data where that is meaningful.

    An omegaconf ``DictConfig`` pickles its entries under ``_content`` (nodes holding ``_val``);
    an Enum member pickles as ``Class(value)``. Anything else stays Opaque. Depth is bounded by
    the loader (:data:`MAX_DEPTH`), so the recursion is too.
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
