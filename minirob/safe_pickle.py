"""Reading pickled checkpoints without running the code they might carry, and in bounded work.

A ``.pt`` / ``.bin`` file is a Python pickle, and a pickle is a small program: ``GLOBAL`` names any
importable object, ``REDUCE``/``NEWOBJ`` call it, ``BUILD`` sets attributes on what was built, and
persistent ids let the loader do anything it likes. ``torch.load`` is therefore never given an
untrusted file here (not even with ``weights_only=True``, which still sends a TorchScript zip to
``torch.jit.load``). :mod:`minirob.containers` opens the file and recognises the container;
:mod:`minirob.allow_list` says what each name a pickle may use resolves to; this module runs the
pickle's opcodes with a pure-Python unpickler whose every door is checked:

* **GLOBAL** (``find_class``) returns only what :data:`~minirob.allow_list.ALLOWED` lists (checked
  stand-ins, never torch's own rebuild functions); ``fairseq``/``omegaconf`` classes become inert
  :class:`Opaque` records, made afresh for each load (nothing is cached between loads). Anything
  else raises :class:`~minirob.errors.UnsafeCheckpointError` before it is imported.
* **REDUCE / NEWOBJ** may call only the constructors in :data:`~minirob.allow_list.CALLABLE`
  (``torch.Tensor``, say, may be named as a *type* for ``_rebuild_from_type_v2`` but not called);
  ``OrderedDict`` only with no arguments, as ``OrderedDict.__reduce__`` writes it. ``INST``/``OBJ``
  (protocol 0/1 object building, which torch never writes) are refused.
* **BUILD** (``__setstate__`` / slot state) is accepted only in the shapes real files use, and
  only on an *instance* built by this same pickle -- never on an allow-listed function or class,
  so nothing can mutate a global (``_rebuild_tensor_v2.__defaults__`` poisoning):

  - ``argparse.Namespace``: a plain dict of string names, none of them ``__dunder__`` (fairseq's
    training arguments); no slot state;
  - ``collections.OrderedDict``: ``{"_metadata": {module name: {"version": 1, ...}}}`` (every
    ``state_dict()`` carries it, and ``load_state_dict`` reads it);
  - numpy arrays: ``(1, shape, dtype, is_fortran, raw bytes)`` with the bytes matching the shape;
    numpy dtypes: exactly the state the dtype already has (so BUILD changes nothing);
  - :class:`Opaque` stand-ins: any state, recorded as data.
* **Persistent ids** must be ``('storage', <torch storage type>, key, location, numel)`` (zip) or
  the legacy ``(..., numel, None)``; ``('module', ...)``, which makes torch's legacy loader write
  ``.patch`` files, is refused. Each storage's bytes come from the file, sized against it.
* **APPEND / SETITEM / ADDITEMS** only on lists / dicts / sets, and never on a container already
  placed inside another (honest pickles fill a container before using it; only a recursive or
  re-opened one would, and that is how cost accounting is fooled). Dict keys and set members only
  of types whose hashes a file cannot make collide (:func:`~minirob.allow_list.check_keys`); a
  protocol-0 ``PUT`` index only below ``2**32``.

Bounded work: every container's *expanded* item count and nesting depth is tracked as it is built
(a DAG of shared lists counts every path, as the code walking it later would), and the load is
refused past :data:`MAX_DEPTH` levels or :data:`MAX_ITEMS` items, or once the items copied into
containers pass :data:`MAX_WORK`. Objects not yet in a container are bounded too (on the stack and
under open MARKs: :data:`MAX_STACK`; in the memo: :data:`MAX_MEMO`), and so are opcodes
(:data:`MAX_OPCODES`) and distinct stand-in classes (:data:`MAX_OPAQUE_CLASSES`). All storages
together may not exceed the file's size, and a tensor view must fit inside its storage, with no
stride 0.
"""

from __future__ import annotations

import _compat_pickle
import argparse
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

from .allow_list import (
    ALLOWED,
    NEWOBJ_CLASSES,
    Opaque,
    Storage,
    StorageTable,
    callable_for,
    check_keys,
    describe,
    int_tuple,
    is_opaque_class,
    is_opaque_module,
    opaque_class,
    plain_dtype,
)
from .containers import (  # noqa: F401 - check_zip_crc re-exported: minirob.safe_pickle's API
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    LegacyFile,
    ZipCheckpoint,
    check_zip_crc,
    container_kind,
    open_regular_file,
)
from .errors import CheckpointError, UnsafeCheckpointError, printable

__all__ = ["Opaque", "RestrictedUnpickler", "check_zip_crc", "load_tensor_file",
           "safe_torch_load", "unwrap"]

MAX_DEPTH = 64  # containers inside containers; real checkpoints nest fewer than 10 levels
MAX_ITEMS = 2_000_000  # expanded items under any one object (fairseq's checkpoints: ~10,000)
MAX_WORK = 20_000_000  # items copied into containers in one load (hashing, later walks)
MAX_STACK = 100_000  # objects on the stack and under open MARKs (pickle batches lists by 1,000)
MAX_MEMO = 1_000_000  # memoized objects (a real fairseq model.pt: ~1,100; ~3 per tensor)
MAX_OPCODES = 10_000_000  # opcodes run (a real fairseq model.pt: ~5,000)
MAX_OPAQUE_CLASSES = 1_000  # distinct fairseq/omegaconf classes named (real: a handful)
_CHECK_EVERY = 1024  # opcodes between two looks at MAX_STACK, MAX_MEMO and MAX_OPCODES

_LEAVES = (str, bytes, int, float, bool, type(None), complex, Tensor, torch.dtype, Storage)
_op = {name: getattr(pickle, name)[0] for name in (
    "BUILD", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ", "APPEND", "APPENDS", "SETITEM",
    "SETITEMS", "ADDITEMS", "LIST", "DICT", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "FROZENSET",
    "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER", "MARK", "PUT")}


def _counted(load_op: Callable) -> Callable:
    """``load_op``, followed by the unpickler's opcode count (and, now and then, its limits)."""
    def counted(self: "RestrictedUnpickler") -> None:
        load_op(self)
        self.opcodes += 1
        if self.opcodes % _CHECK_EVERY == 0:
            self.check_live()
    return counted


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
        self.work = self.opcodes = 0
        self.opaque_classes: dict[tuple[str, str], type] = {}  # this load's stand-ins

    # -- GLOBAL
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names: __builtin__.set ...
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        key = (module, name)
        found = ALLOWED.get(key)
        if found is not None and (not self.tensors_only or module.startswith("torch")
                                  or key == ("collections", "OrderedDict")):
            return found
        if not self.tensors_only and is_opaque_module(module):
            return self._opaque(module, name)
        where = ("the tensors-only allow-list of a weights file (what weights_only=True "
                 "admits)") if self.tensors_only else "minirob's allow-list"
        raise UnsafeCheckpointError(
            f"the pickle asks for GLOBAL {printable(module)}.{printable(name)}, which is not on "
            f"{where}; refused before importing or running it"
        )

    def _opaque(self, module: str, name: str) -> type:
        key = (module, name)
        if key not in self.opaque_classes:
            if len(self.opaque_classes) >= MAX_OPAQUE_CLASSES:
                raise CheckpointError(f"the pickle names more than {MAX_OPAQUE_CLASSES} fairseq/"
                                      "omegaconf classes; refused")
            self.opaque_classes[key] = opaque_class(module, name)
        return self.opaque_classes[key]

    # -- persistent ids: storages only
    def persistent_load(self, pid: Any) -> Storage:
        length = 6 if self.legacy_ids else 5
        kind = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
        if self.storages is None or not isinstance(pid, tuple) or len(pid) != length or \
                kind != "storage" or (self.legacy_ids and pid[5] is not None) or \
                not isinstance(pid[3], str):
            raise UnsafeCheckpointError(
                f"the pickle holds a persistent id of kind {printable(repr(kind))[:60]}; only "
                "('storage', type, key, location, size) ids of tensor storages are accepted"
            )
        return self.storages.get(pid[1], pid[2], pid[4])

    # -- bounded work
    def check_live(self) -> None:
        """Objects not yet in any container cost memory too: 1 byte of EMPTY_SET is 216 bytes."""
        if len(self.stack) + sum(map(len, self.metastack)) > MAX_STACK:
            raise CheckpointError(f"the pickle piles more than {MAX_STACK} objects on its stack "
                                  "(outside any container); refused")
        if len(self.memo) > MAX_MEMO:
            raise CheckpointError(f"the pickle memoizes more than {MAX_MEMO} objects; refused")
        if self.opcodes > MAX_OPCODES:
            raise CheckpointError(f"the pickle runs more than {MAX_OPCODES} opcodes; refused")

    def load_mark(self) -> None:
        if len(self.metastack) >= MAX_DEPTH:
            raise CheckpointError(f"containers nested more than {MAX_DEPTH} deep (MARKs); refused")
        super().load_mark()

    def load_put(self) -> None:
        """PUT (protocol 0) gives its memo index as text; past ``2**32`` (BINPUT's range) indices
        could be chosen to share a hash."""
        index = int(self.readline()[:-1])
        if not 0 <= index < 2**32:
            raise CheckpointError("the pickle memoizes under an index outside 0..2**32; refused")
        self.memo[index] = self.stack[-1]

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

    def _from_items(self, keys: Callable[[list], list], build: Callable[[list], Any]) -> None:
        """DICT / FROZENSET: the items are counted, and their ``keys`` checked, before ``build``
        hashes them (a key made of shared tuples would cost its expanded size to hash)."""
        items = self.pop_mark()
        self.add(items, items)
        check_keys(keys(items))
        value = build(items)
        self.costs[id(value)] = self.costs.pop(id(items))
        self.keep[id(value)] = value
        self.append(value)

    def load_dict(self) -> None:
        def build(items: list) -> dict:
            return {items[i]: items[i + 1] for i in range(0, len(items) - 1, 2)}

        self._from_items(lambda items: items[0::2], build)

    def load_frozenset(self) -> None:
        self._from_items(lambda items: items, frozenset)

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
        self._grow(dict, [key, value], keys=[key])
        self.stack[-1][key] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        self._grow(dict, items, keys=items[0::2])
        target = self.stack[-1]
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]

    def load_additems(self) -> None:
        items = self.pop_mark()
        self._grow(set, items, keys=items)
        self.stack[-1].update(items)

    def _grow(self, kind: type, items: list, keys: list = ()) -> None:
        target = self.stack[-1] if self.stack else None
        if not isinstance(target, kind) or isinstance(target, (Tensor, numpy.ndarray)):
            raise UnsafeCheckpointError(f"the pickle adds items to {describe(target)}, not a "
                                        f"{kind.__name__}")
        check_keys(keys)
        self.add(target, items)

    # -- opcodes calling things
    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        call = callable_for(func)
        if call is None:
            raise UnsafeCheckpointError(f"the pickle calls {describe(func)}, which it may only "
                                        "name, not call; refused")
        if type(args) is not tuple or (func is collections.OrderedDict and args):
            raise CheckpointError(f"REDUCE of {describe(func)} with arguments of an unexpected "
                                  "shape (not a tuple, or items given to OrderedDict)")
        value = call(*args)
        self.stack[-1] = value
        if not isinstance(value, _LEAVES):
            self.add(value, args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack[-1]
        if not (cls in NEWOBJ_CLASSES or is_opaque_class(cls)) or type(args) is not tuple or \
                (args and not is_opaque_class(cls)):
            raise UnsafeCheckpointError(f"the pickle instantiates {describe(cls)}; refused")
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
        elif kind is argparse.Namespace and _namespace_state_ok(state):
            self.add(target, [state])
            vars(target).update(state)
        elif kind is collections.OrderedDict and _metadata_state_ok(state):
            self.add(target, [state])
            vars(target).update(state)
        elif kind is numpy.ndarray and _array_state_ok(state):
            self.add(target, [state])
            target.__setstate__(state)
        elif isinstance(target, numpy.dtype) and state == target.__reduce__()[2]:
            pass  # the state the dtype already has: nothing to set
        else:
            raise UnsafeCheckpointError(
                f"the pickle sets state on {describe(target)} (BUILD with "
                f"{describe(state)}); only argparse.Namespace, an OrderedDict's _metadata, "
                "numpy arrays and fairseq stand-ins accept state, in their usual shapes"
            )

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
    dispatch[_op["MARK"]] = load_mark
    dispatch[_op["PUT"]] = load_put
    for _name in ("BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"):
        dispatch[_op[_name]] = load_refused_buffer
    dispatch = {code: _counted(load_op) for code, load_op in dispatch.items()}


def _namespace_state_ok(state: Any) -> bool:
    """fairseq's arguments: names that are not ``__dunder__`` (no ``__class__``, ``__dict__``)."""
    return type(state) is dict and all(
        isinstance(k, str) and not (k.startswith("__") and k.endswith("__")) for k in state)


def _metadata_state_ok(state: Any) -> bool:
    """``{"_metadata": {module name: {key: number or name}}}`` as ``state_dict()`` leaves it;
    ``load_state_dict`` calls ``.get`` on both levels, so anything else would be a traceback."""
    if type(state) is not dict or not set(state) <= {"_metadata"}:
        return False
    metadata = state.get("_metadata", {})
    leaves = (int, float, bool, str, type(None))
    return type(metadata) in (dict, collections.OrderedDict) and all(
        type(name) is str and type(local) is dict and
        all(type(k) is str and type(v) in leaves for k, v in local.items())
        for name, local in metadata.items())


def _array_state_ok(state: Any) -> bool:
    """numpy's ``ndarray.__setstate__`` tuple, plain numbers, exactly as many bytes as the shape."""
    if type(state) is not tuple or len(state) != 5:
        return False
    version, shape, dtype, fortran, raw = state
    try:
        dtype = plain_dtype(dtype)
        shape = int_tuple(shape, "size")
    except CheckpointError:
        return False
    return version == 1 and type(fortran) is bool and isinstance(raw, bytes) and \
        len(raw) == math.prod(shape) * dtype.itemsize


# ------------------------------------------------------------------ the two containers
def _load_zip(handle, path: Path, tensors_only: bool) -> Any:
    archive = ZipCheckpoint(handle, path)
    try:
        table = StorageTable(archive.file_size, archive.storage)
        data = archive.pickle_bytes()
        value = RestrictedUnpickler(io.BytesIO(data), table, tensors_only=tensors_only).load()
        if archive.byteorder != "little":
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


def _legacy_header(legacy: LegacyFile) -> Any:
    return RestrictedUnpickler(legacy, tensors_only=True).load()


def _check_legacy_headers(legacy: LegacyFile) -> None:
    """The three small pickles before the object: magic number, protocol, system info."""
    if _legacy_header(legacy) != LEGACY_MAGIC_NUMBER:
        raise CheckpointError(f"{legacy.shown}: a plain pickle, not a file torch.save wrote (no "
                              "torch magic number); refused")
    if _legacy_header(legacy) != LEGACY_PROTOCOL_VERSION:
        raise CheckpointError(f"{legacy.shown}: unknown legacy torch protocol version")
    system = _legacy_header(legacy)
    if not isinstance(system, dict) or system.get("little_endian") is not True:
        raise CheckpointError(f"{legacy.shown}: a legacy file from a big-endian machine (or "
                              "without its system record) is not supported")


def _load_legacy(handle, path: Path, tensors_only: bool) -> Any:
    legacy = LegacyFile(handle, path)
    _check_legacy_headers(legacy)
    pending: dict[str, Tensor] = {}

    def allocate(key: str, nbytes: int) -> Tensor:
        pending[key] = torch.empty(nbytes, dtype=torch.uint8)  # filled once the pickle is read
        return pending[key]

    table = StorageTable(legacy.size, allocate)
    value = RestrictedUnpickler(legacy, table, legacy_ids=True, tensors_only=tensors_only).load()
    keys = _legacy_header(legacy)
    if type(keys) is not list or not all(type(key) is str for key in keys) or \
            sorted(keys) != sorted(table.storages) or len(set(keys)) != len(keys):
        raise CheckpointError(f"{legacy.shown}: the list of storages does not match the pickle's")
    for key in keys:
        _, storage = table.storages[key]
        legacy.fill(key, pending[key], storage.numel, storage.values.element_size())
    return value


def _load(path: str | os.PathLike, tensors_only: bool) -> Any:
    """Either container, every failure one CheckpointError line starting with the (escaped) path."""
    path = Path(path)
    shown = printable(path)
    with open_regular_file(path) as handle:
        try:
            kind = container_kind(handle, path)
            return (_load_zip if kind == "zip" else _load_legacy)(handle, path, tensors_only)
        except CheckpointError as error:
            text = str(error)
            if text.startswith(shown):
                raise
            raise type(error)(f"{shown}: {text}") from None
        except Exception as error:  # EOFError, UnpicklingError, BadZipFile (CRC), OSError, ...
            text = str(error).splitlines()[0] if str(error) else ""
            raise CheckpointError(
                f"{shown}: not a readable PyTorch checkpoint; truncated or corrupted? "
                f"({type(error).__name__}: {printable(text)[:200]})"
            ) from None


# ------------------------------------------------------------------ the public API
def safe_torch_load(path: str | os.PathLike) -> Any:
    """Load a checkpoint ``torch.save`` wrote (zip or legacy format), tensors on the CPU.

    Raises UnsafeCheckpointError for a file that would run code or mutate anything,
    MissingFileError for a missing one, and CheckpointError for one that is not a regular file,
    empty, truncated, not a PyTorch file, or too costly to read.
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
        raise CheckpointError(f"{printable(path)}: expected a dict of tensors, got "
                              f"{type(state).__name__}")
    return state


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
