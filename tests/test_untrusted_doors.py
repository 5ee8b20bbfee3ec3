"""Issue 19: the doors past the allow-list, and crafted pickles that cost unbounded work.

Three files got past minirob's allow-list unpickler by other doors (issue 19):

* **(a) TorchScript**: a zip holding ``constants.pkl``/``code/`` that ``torch.load`` hands to
  ``torch.jit.load``; its scripted ``__setstate__`` writes a file (here with ``torch.from_file``);
* **(b) legacy .patch**: a legacy (non-zip) file whose BUILD sets ``dump_patches``/``__name__`` on the
  allow-listed ``argparse.Namespace`` class and whose ``('module', ...)`` persistent id makes torch's
  legacy loader write ``<__name__>.patch``;
* **(c) poisoning**: BUILD on the allow-listed ``torch._utils._rebuild_tensor_v2`` sets its
  ``__defaults__`` so that every tensor loaded afterwards in the process comes back negated.

:data:`DOORS` builds each (TorchScript also as ``pytorch_model.bin`` and as a planted
``checkpoints/step-0000001.pt``) and :func:`test_door_is_closed_on_every_entry_point` feeds it to
every entry point in a fresh interpreter (:data:`ENTRY_POINTS`: 7 commands, 8 ``from_pretrained``
calls), then checks: each is a one-line ``MinirobError`` naming the file, no file appears anywhere
under the test's folder (no ``.patch``), and trusted files loaded afterwards in that same process,
by minirob and by ``torch.load(weights_only=True)``, hold exactly the tensors that were saved.
:func:`test_the_doors_are_live_under_torch_load` shows the same bytes DO write their file / poison
the process under ``torch.load``, so every check above can fail.

:data:`CRAFTED` is this issue's bad-input table for pickles: one row per crafted file (resource
abuse, malformed storages and views, BUILD / persistent ids of the wrong shape), each required to
be a one-line error naming the file, within a time limit.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from reliability_helpers import tiny_model_dir, write_corpus

from minirob.errors import CheckpointError, MinirobError, UnsafeCheckpointError
from minirob.fairseq import load_fairseq
from minirob.finetune import RECIPE_FILE
from minirob.safe_pickle import MAX_DEPTH, load_tensor_file, safe_torch_load
from minirob.weights import read_state_dict


# ------------------------------------------------------------------------ pickle assembly
def text(value: str) -> bytes:
    """BINUNICODE."""
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def integer(value: int) -> bytes:
    """BININT, or LONG1 for values outside 32 bits."""
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    data = pickle.encode_long(value)
    return b"\x8a" + bytes([len(data)]) + data


def ints(values) -> bytes:
    return b"(" + b"".join(integer(v) for v in values) + b"t"


def name(module: str, attribute: str) -> bytes:
    """GLOBAL."""
    return f"c{module}\n{attribute}\n".encode()


def tensor_call(key: str, numel: int, size, stride, offset: int = 0, hooks: bytes | None = None,
                storage_type: str = "FloatStorage", legacy: bool = False) -> bytes:
    """``_rebuild_tensor_v2(<storage id>, offset, size, stride, False, OrderedDict())``."""
    pid = b"(" + text("storage") + name("torch", storage_type) + text(key) + text("cpu") + \
        integer(numel) + (b"N" if legacy else b"") + b"tQ"
    hooks = hooks if hooks is not None else name("collections", "OrderedDict") + b")R"
    return name("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + integer(offset) + \
        ints(size) + ints(stride) + b"\x89" + hooks + b"tR"


def dict_of(**items: bytes) -> bytes:
    return b"}(" + b"".join(text(k) + v for k, v in items.items()) + b"u"


def pickled(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def write_zip(path: Path, data_pkl: bytes, storages: dict[str, bytes] | None = None,
              extra: dict[str, bytes] | None = None, compress: bool = False) -> Path:
    """A zip in torch.save's layout (``archive/data.pkl``, ``archive/data/<key>``, ...)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", "3\n")
        for record, raw in (extra or {}).items():  # full record names
            archive.writestr(record, raw)
    return path


def write_legacy(path: Path, main_pickle: bytes, storages: list[tuple[str, int, bytes]] = ()) -> Path:
    """torch's legacy format: magic, protocol, system info, object, storage keys, storages."""
    system = {"protocol_version": 1001, "little_endian": True,
              "type_sizes": {"short": 2, "int": 4, "long": 4}}
    parts = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2),
             pickle.dumps(system, protocol=2), main_pickle,
             pickle.dumps([key for key, _, _ in storages], protocol=2)]
    parts += [struct.pack("<q", numel) + raw for _, numel, raw in storages]
    path.write_bytes(b"".join(parts))
    return path


# ------------------------------------------------------------------------ the three doors
class ScriptedWriter(torch.nn.Module):
    """Scripted, its ``__setstate__`` creates ``target`` (and fills it): what torch.jit.load runs."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target
        self.blob = torch.zeros(8, dtype=torch.uint8)

    def forward(self, x):
        return x

    @torch.jit.export
    def __getstate__(self):
        return (self.target, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]):
        self.target = state[0]
        self.training = state[1]
        self.blob = torch.from_file(self.target, True, 8, dtype=torch.uint8)
        self.blob.fill_(65)


def torchscript_door(path: Path, target: Path) -> Path:
    torch.jit.script(ScriptedWriter(str(target))).save(str(path))
    return path


def patch_door(path: Path, target: Path) -> Path:
    """Legacy file: BUILD slot state on the Namespace class, then a ('module', ...) id."""
    body = name("argparse", "Namespace") + b"q\x00" + b"N" + \
        dict_of(dump_patches=b"\x88", __name__=text(str(target))) + b"\x86b0" + \
        b"(" + text("module") + b"h\x00" + text("class A: pass") + text("class B: pass") + b"tQ"
    return write_legacy(path, pickled(body))


def poison_door(path: Path, target: Path) -> Path:
    """Zip whose pickle sets ``_rebuild_tensor_v2.__defaults__`` (metadata: negative bit)."""
    defaults = b"}" + text("neg") + b"\x88s" + b"\x85"  # ({'neg': True},)
    slot_state = b"N}" + text("__defaults__") + defaults + b"s\x86"  # (None, {'__defaults__': ...})
    body = name("torch._utils", "_rebuild_tensor_v2") + slot_state + b"b0" + \
        dict_of(weight=tensor_call("0", 2, (2,), (1,)))
    return write_zip(path, pickled(body), {"0": struct.pack("<2f", 1.5, -2.0)})


# name -> (builder, what the refusal must say)
DOORS = {
    "torchscript": (torchscript_door, "TorchScript"),
    "legacy-patch": (patch_door, "argparse.Namespace"),
    "poison-defaults": (poison_door, "_rebuild_tensor_v2"),
}

# Each door file is planted in four places: a transformers folder's pytorch_model.bin (also in a
# fine-tuned run folder), a fairseq model.pt, and a pretraining run's newest checkpoint; every
# entry point reads one of them.
ENTRY_POINTS = {
    "cli convert pytorch_model.bin": ["convert", "{hf}/pytorch_model.bin", "{tmp}/out-convert-bin"],
    "cli convert model.pt": ["convert", "{fairseq}/model.pt", "{tmp}/out-convert-pt"],
    "cli finetune --from": ["finetune", "--task", "classify", "--from", "{hf}", "--train",
                            "{tmp}/train.csv", "--out", "{tmp}/out-finetune", "--epochs", "1"],
    "cli predict": ["predict", "{tmp}/tuned", "a fine film"],
    "cli fill-mask": ["fill-mask", "{hf}", "The <mask> sat."],
    "cli evaluate": ["evaluate", "{hf}", "--files", "{tmp}/text.txt"],
    "cli pretrain --resume": ["pretrain", "--corpus", "files", "--files", "{tmp}/text.txt", "--out",
                              "{run}", "--resume", "--steps", "4", "--layers", "1", "--hidden", "16",
                              "--heads", "2", "--vocab-size", "300", "--max-length", "32",
                              "--batch-size", "4", "--bf16", "off", "--no-progress"],
    **{f"{cls}.from_pretrained({where})": [cls, where]
       for cls in ("RobertaModel", "RobertaForMaskedLM", "RobertaForSequenceClassification",
                   "RobertaForTokenClassification")
       for where in ("{hf}", "{fairseq}/model.pt")},
}
# The file each entry point must name in its error.
NAMED = {"cli pretrain": "step-0000001.pt", "model.pt": "model.pt"}

DRIVER = r"""
import contextlib, io, json, sys, time
spec = json.loads(sys.argv[1])
import torch
import minirob
from minirob.cli import main
from minirob.safe_pickle import safe_torch_load
from minirob.weights import read_state_dict


def enter(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        if argv[0].startswith("Roberta"):
            try:
                getattr(minirob, argv[0]).from_pretrained(argv[1])
                return [0, "loaded"]
            except minirob.MinirobError as error:
                return [1, f"{type(error).__name__}: {error}"]
            except Exception as error:
                return [1, f"NOT A MinirobError {type(error).__name__}: {error}"]
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        except BaseException as error:
            return ["raised", f"Traceback: {type(error).__name__}: {error}"]
    return [code, err.getvalue()]


report = {}
for door, entries in spec["doors"].items():  # one door after the other, in this one process
    started = time.perf_counter()
    results = {label: enter(argv) for label, argv in entries.items()}
    after = {}  # then trusted files, loaded in the process the door file was fed to
    for label, path in spec["trusted"].items():
        for how, load in (("torch.load", lambda p: torch.load(p, weights_only=True)),
                          ("minirob", safe_torch_load), ("minirob-bin", read_state_dict)):
            after[f"{label} {how}"] = {k: v.resolve_neg().resolve_conj().numpy().tobytes().hex()
                                       for k, v in load(path).items()}
    report[door] = {"results": results, "after": after, "seconds": time.perf_counter() - started}
print(json.dumps(report))
"""


def run_python(code: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("doors") / "model")


def trusted_files(folder: Path) -> tuple[dict[str, Path], dict[str, torch.Tensor]]:
    """A zip and a legacy file of known tensors (the independent reference: what was saved)."""
    generator = torch.Generator().manual_seed(19)
    tensors = {"weight": torch.randn(3, 4, generator=generator),
               "bias": torch.randn(4, generator=generator).double(),
               "ids": torch.arange(5)}
    zip_path = folder / "trusted.bin"
    torch.save(tensors, zip_path)
    legacy_path = folder / "trusted-legacy.bin"
    torch.save(tensors, legacy_path, _use_new_zipfile_serialization=False)
    return {"zip": zip_path, "legacy": legacy_path}, tensors


def hexes(tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    return {k: v.numpy().tobytes().hex() for k, v in tensors.items()}


def plant(door: str, tmp: Path, model_dir: Path, victim: Path) -> dict[str, str]:
    """The door file as {hf,tuned}/pytorch_model.bin, fairseq/model.pt, run/checkpoints/step-*.pt."""
    builder, _ = DOORS[door]
    hf, fairseq, run = tmp / "hf", tmp / "fairseq", tmp / "run"
    shutil.copytree(model_dir, hf)
    (hf / "model.safetensors").unlink()
    builder(hf / "pytorch_model.bin", victim / "written")
    shutil.copytree(hf, tmp / "tuned")  # a fine-tuned run folder, for predict
    (tmp / "tuned" / RECIPE_FILE).write_text(json.dumps({"task": "sentiment", "labels": ["a", "b"],
                                                        "max_length": 32}))
    fairseq.mkdir()
    shutil.copy(hf / "pytorch_model.bin", fairseq / "model.pt")
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(hf / "pytorch_model.bin", run / "checkpoints" / "step-0000001.pt")
    for tokenizer_file in ("vocab.json", "merges.txt", "tokenizer.json"):  # a run's tokenizer
        shutil.copy(model_dir / tokenizer_file, run / tokenizer_file)
    write_corpus(tmp / "text.txt", documents=12)
    (tmp / "train.csv").write_text(
        "text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(10)))
    return {"hf": str(hf), "fairseq": str(fairseq), "run": str(run), "tmp": str(tmp)}


def assert_one_line_refusal(label: str, code, message: str, needle: str) -> None:
    assert code not in (0, None), f"{label}: loaded / exit 0: {message}"
    assert "Traceback" not in message and "NOT A MinirobError" not in message, f"{label}: {message}"
    lines = [line for line in message.splitlines() if line.strip()]
    final = lines[-1] if lines else ""
    culprit = next((v for k, v in NAMED.items() if k in label), "pytorch_model.bin")
    assert culprit in final and needle in final, f"{label}: {final!r}"


def test_doors_are_closed_on_every_entry_point(model_dir, tmp_path):
    """Every door x every entry point, in one fresh interpreter; trusted loads after each door."""
    trusted, tensors = trusted_files(tmp_path)
    doors, victims = {}, {}
    for door in DOORS:  # the poisoning door last: a leak would show in its own "after" check
        tmp = tmp_path / door
        victims[door] = tmp / "victim"
        victims[door].mkdir(parents=True)
        places = plant(door, tmp, model_dir, victims[door])
        doors[door] = {label: [part.format(**places) for part in argv]
                       for label, argv in ENTRY_POINTS.items()}
    before = snapshot(tmp_path)
    result = run_python(DRIVER, json.dumps({"doors": doors,
                                            "trusted": {k: str(v) for k, v in trusted.items()}}))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert list(report) == list(DOORS) == ["torchscript", "legacy-patch", "poison-defaults"]
    for door, outcome in report.items():
        print(f"{door}: {len(outcome['results'])} entry points in {outcome['seconds']:.1f} s")
        assert len(outcome["results"]) == len(ENTRY_POINTS) == 15
        for label, (code, message) in outcome["results"].items():
            assert_one_line_refusal(f"{door} {label}", code, message, DOORS[door][1])
        assert not list(victims[door].iterdir()), f"{door} wrote {list(victims[door].iterdir())}"
        assert len(outcome["after"]) == 6
        for label, state in outcome["after"].items():
            assert state == hexes(tensors), f"after {door}: {label} no longer loads what was saved"
    created = sorted(snapshot(tmp_path) - before)
    assert not [p for p in created if p.endswith(".patch") or "written" in p], created
    assert not [p for p in created if (tmp_path / p).is_file()], f"files appeared: {created}"


CONTROL = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import torch
trusted, doors = sys.argv[1], json.loads(sys.argv[2])
after = {}
for door, path in doors.items():
    try:
        torch.load(path, weights_only=False)
    except Exception as error:
        pass
    state = torch.load(trusted, weights_only=True)
    after[door] = {k: v.resolve_neg().numpy().tobytes().hex() for k, v in state.items()}
print(json.dumps(after))
"""


def test_the_doors_are_live_under_torch_load(tmp_path):
    """Under plain ``torch.load`` each door does write (a, b) or poison the process (c)."""
    trusted, tensors = trusted_files(tmp_path)
    paths = {}
    for door, (builder, _) in DOORS.items():
        (tmp_path / door).mkdir()
        paths[door] = str(builder(tmp_path / door / "door.pt", tmp_path / door / "written"))
    result = run_python(CONTROL, str(trusted["zip"]), json.dumps(paths))
    assert result.returncode == 0, result.stderr[-2000:]
    after = json.loads(result.stdout.splitlines()[-1])
    assert (tmp_path / "torchscript" / "written").read_bytes() == b"A" * 8
    assert (tmp_path / "legacy-patch" / "written.patch").exists()
    assert after["torchscript"] == after["legacy-patch"] == hexes(tensors)
    negated = {k: -v for k, v in tensors.items()}
    assert after["poison-defaults"] == hexes(negated)  # every tensor, even integers, now negated


# ------------------------------------------------------------------------ the crafted-file table
def deep_list(depth: int) -> bytes:
    return b"]" * depth + b"a" * (depth - 1)  # EMPTY_LIST x depth, then APPEND each into the last


def shared_list_dag(levels: int) -> bytes:
    body = b"]"
    for level in range(levels):  # list_{n+1} = [list_n, list_n]: 2**levels leaves when expanded
        body += b"r" + struct.pack("<I", level) + b"0](" + (b"j" + struct.pack("<I", level)) * 2 + b"e"
    return body


def tuple_key_dag(levels: int) -> bytes:
    body = b")"
    for level in range(levels):  # t_{n+1} = (t_n, t_n): hashing it visits 2**levels tuples
        body += b"r" + struct.pack("<I", level) + b"0" + (b"j" + struct.pack("<I", level)) * 2 + b"\x86"
    return b"}" + body + b"K\x01s"


def fairseq_zip(path: Path, cfg: bytes) -> Path:
    return write_zip(path, pickled(dict_of(model=b"}", cfg=cfg)))


def one_tensor_zip(path: Path, numel: int, size, stride, offset: int = 0, record: int | None = None,
                   **kwargs) -> Path:
    body = dict_of(**{"encoder.embed_positions.weight": tensor_call("0", numel, size, stride, offset,
                                                                     **kwargs)})
    raw = bytes(4 * (numel if record is None else record))
    return write_zip(path, pickled(body), {"0": raw})


def build_on(module: str, attribute: str, state: bytes) -> bytes:
    return pickled(name(module, attribute) + state + b"b")


SLOT_STATE = b"N" + dict_of(__repr__=text("x")) + b"\x86"

COLLIDING = [(2**61 - 1) * (i + 1) for i in range(3)]  # hash(n) == 0 for each: one hash, 3 keys


def colliding_dict(path: Path) -> Path:
    """Keys of one hash: 80,000 of them (1 MB) took over 120 s to insert; 3 show the rule."""
    return fairseq_zip(path, b"}(" + b"".join(integer(k) + b"N" for k in COLLIDING) + b"u")


def empty_sets(count: int) -> bytes:
    """EMPTY_SET ``count`` times: 1 byte each, ~216 bytes of memory each (20 MB file: 4.8 GB)."""
    return b"\x80\x04" + b"\x8f" * count + b"N."


def bzip2_record_zip(path: Path, megabytes: int = 1) -> Path:
    """A zip whose unused record is bzip2 (zipfile expands bzip2 in one call: 1.8 KB -> 4.4 GB)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled(b"}"))
        archive.writestr("archive/data/0", bytes(megabytes << 20), zipfile.ZIP_BZIP2)
    return path


def many_records_zip(path: Path, count: int) -> Path:
    """torch's layout plus ``count`` empty records, written by hand (zipfile would take seconds):
    every extra central-directory entry points at data.pkl's local header; nothing reads them."""
    data = pickled(b"}")

    def header(signature: bytes, record: str, local: bool) -> bytes:
        encoded = record.encode()
        sizes = struct.pack("<HHHIIIH", 0, 0, 0, zipfile.crc32(data), len(data), len(data),
                            len(encoded))
        if local:  # version needed, flags, then the common part, extra length 0
            return signature + struct.pack("<HH", 20, 0) + sizes + struct.pack("<H", 0) + encoded
        # version made by/needed, flags, common part, extra/comment/disk/attributes, offset 0
        return signature + struct.pack("<HHH", 20, 20, 0) + sizes + \
            struct.pack("<HHHHII", 0, 0, 0, 0, 0, 0) + encoded

    local = header(b"PK\x03\x04", "archive/data.pkl", True) + data
    central = header(b"PK\x01\x02", "archive/data.pkl", False) + b"".join(
        header(b"PK\x01\x02", f"archive/r{i}", False) for i in range(count))
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


def special_file(kind: str):
    """A builder that puts a directory / FIFO / link to /dev/zero / an empty file at the path."""
    def build(path: Path) -> Path:
        if kind == "directory":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "device":
            path.symlink_to("/dev/zero")
        else:
            path.write_bytes(b"")
        return path
    return build


def numpy_array_pickle(count: int, code: str) -> bytes:
    """``numpy.ndarray`` of ``count`` items of dtype ``code`` over no bytes at all."""
    return pickled(name("numpy.core.multiarray", "_reconstruct") + b"(" + name("numpy", "ndarray") +
                   integer(0) + b"\x85" + text("b") + b"tR" + b"(" + integer(1) + ints((count,)) +
                   name("numpy", "dtype") + b"(" + text(code) + b"\x89\x88tR" + b"\x89C\x00tb")

# row name -> (builder(path), error class, text the one-line message must contain)
CRAFTED = {
    "cfg list nested 100,000 deep": (
        lambda p: fairseq_zip(p, deep_list(100_000)), CheckpointError, f"more than {MAX_DEPTH} deep"),
    "100-level shared-list DAG": (
        lambda p: fairseq_zip(p, shared_list_dag(100)), CheckpointError, "expands to more than"),
    "100-level shared-tuple dict key (hash bomb)": (
        lambda p: fairseq_zip(p, tuple_key_dag(100)), CheckpointError, "expands to more than"),
    "list that contains itself": (
        lambda p: fairseq_zip(p, b"]q\x00h\x00a"), CheckpointError, "inside itself"),
    "stride-0 embed_positions": (
        lambda p: one_tensor_zip(p, 1, (514, 768), (0, 0)), CheckpointError, "stride 0"),
    "stride-0 in one dimension": (
        lambda p: one_tensor_zip(p, 768, (514, 768), (0, 1)), CheckpointError, "stride 0"),
    "huge view over a 4-element storage": (
        lambda p: one_tensor_zip(p, 4, (10**6, 10**6), (1, 1)), CheckpointError, "does not fit"),
    "view past its storage's end": (
        lambda p: one_tensor_zip(p, 4, (2, 2), (2, 1), offset=1), CheckpointError, "does not fit"),
    "storage larger than the file": (
        lambda p: one_tensor_zip(p, 10**12, (4,), (1,), record=4), CheckpointError,
        "more than the file holds"),
    "storage record of the wrong size": (
        lambda p: one_tensor_zip(p, 4, (4,), (1,), record=8), CheckpointError, "holds 32 bytes"),
    "storage record missing": (
        lambda p: write_zip(p, pickled(dict_of(w=tensor_call("7", 1, (1,), (1,))))), CheckpointError,
        "does not hold"),
    "compressed storage record (zip bomb)": (
        lambda p: write_zip(p, pickled(dict_of(w=tensor_call("0", 10**6, (10**6,), (1,)))),
                            {"0": bytes(4 * 10**6)}, compress=True), CheckpointError, "compressed"),
    "tensor with a backward hook": (
        lambda p: one_tensor_zip(p, 1, (1,), (1,), hooks=dict_of(h=name("builtins", "set"))),
        UnsafeCheckpointError, "backward hooks"),
    "storage id naming a non-storage global": (
        lambda p: one_tensor_zip(p, 1, (1,), (1,), storage_type="Size"), UnsafeCheckpointError,
        "not a torch storage type"),
    "persistent id of kind 'module' (zip)": (
        lambda p: write_zip(p, pickled(b"(" + text("module") + name("argparse", "Namespace") +
                                       text("a") + text("b") + b"tQ")), UnsafeCheckpointError,
        "persistent id of kind 'module'"),
    "persistent id of kind 'module' (legacy, no BUILD)": (
        lambda p: write_legacy(p, pickled(b"(" + text("module") + name("argparse", "Namespace") +
                                          text("a") + text("b") + b"tQ")), UnsafeCheckpointError,
        "persistent id of kind 'module'"),
    "Namespace with slot state": (
        lambda p: write_zip(p, pickled(name("argparse", "Namespace") + b")\x81" + SLOT_STATE + b"b")),
        UnsafeCheckpointError, "sets state on"),
    "Namespace with a __class__ entry": (
        lambda p: write_zip(p, pickled(name("argparse", "Namespace") + b")\x81" +
                                       dict_of(__class__=b"N") + b"b")),
        UnsafeCheckpointError, "sets state on"),
    "BUILD on the Namespace class": (
        lambda p: write_zip(p, build_on("argparse", "Namespace", SLOT_STATE)), UnsafeCheckpointError,
        "sets state on argparse.Namespace"),
    "BUILD on a fairseq stand-in class": (
        lambda p: write_zip(p, build_on("fairseq.meters", "AverageMeter", SLOT_STATE)),
        UnsafeCheckpointError, "sets state on"),
    "BUILD on _rebuild_tensor_v2 (zip)": (
        lambda p: poison_door(p, p), UnsafeCheckpointError, "sets state on"),
    "BUILD on _rebuild_parameter": (
        lambda p: write_zip(p, build_on("torch._utils", "_rebuild_parameter", SLOT_STATE)),
        UnsafeCheckpointError, "sets state on"),
    "BUILD on numpy's dtype": (
        lambda p: write_zip(p, pickled(name("numpy", "dtype") + text("f8") + b"\x89\x89\x87R" +
                                       ints((3, 62)) + b"b")), UnsafeCheckpointError, "sets state on"),
    "OrderedDict state other than _metadata": (
        lambda p: write_zip(p, pickled(name("collections", "OrderedDict") + b")R" +
                                       dict_of(move_to_end=b"N") + b"b")),
        UnsafeCheckpointError, "sets state on"),
    "calling torch.Tensor (allocates)": (
        lambda p: write_zip(p, pickled(name("torch", "Tensor") + b"(" + integer(10**12) + b"tR")),
        UnsafeCheckpointError, "may only name"),
    "bytearray of 10**12 bytes": (
        lambda p: write_zip(p, pickled(name("builtins", "bytearray") + b"(" + integer(10**12) +
                                       b"tR")), CheckpointError, "bytearray"),
    "defaultdict with a code factory": (
        lambda p: write_zip(p, pickled(name("collections", "defaultdict") + b"(" +
                                       name("torch._utils", "_rebuild_tensor_v2") + b"tR")),
        UnsafeCheckpointError, "factory"),
    "INST opcode": (
        lambda p: write_zip(p, b"(iargparse\nNamespace\n."), UnsafeCheckpointError, "INST"),
    "NEWOBJ of set with arguments": (
        lambda p: write_zip(p, pickled(name("builtins", "set") + b")\x81")),
        UnsafeCheckpointError, "instantiates"),
    "TorchScript zip named model.pt (no code run)": (
        lambda p: write_zip(p, pickled(b"}"), extra={"archive/constants.pkl": pickled(b")")}),
        UnsafeCheckpointError, "TorchScript"),
    "zip with records outside its folder": (
        lambda p: write_zip(p, pickled(b"}"), extra={"elsewhere/data/0": b"x"}), CheckpointError,
        "outside"),
    "plain pickle (no torch magic)": (
        lambda p: p.write_bytes(pickle.dumps({"model": {}}, protocol=2)) and p, CheckpointError,
        "plain pickle"),
    "legacy file from a big-endian machine": (
        lambda p: p.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) +
                                pickle.dumps(1001, protocol=2) +
                                pickle.dumps({"little_endian": False}, protocol=2)) and p,
        CheckpointError, "big-endian"),
    "legacy storage count that disagrees": (
        lambda p: write_legacy(p, pickled(dict_of(w=tensor_call("1", 2, (2,), (1,), legacy=True))),
                               [("1", 3, bytes(12))]), CheckpointError, "holds 3 elements"),
    "legacy storage past the file's end": (
        lambda p: write_legacy(p, pickled(dict_of(w=tensor_call("1", 200, (2,), (1,), legacy=True))),
                               [("1", 200, bytes(12))]), CheckpointError, "more than the file"),
    # round 3 (H11): each of these loaded, hung, or raised a traceback before
    "model.pt is a directory": (special_file("directory"), CheckpointError, "a directory"),
    "model.pt is a FIFO (open would block)": (special_file("fifo"), CheckpointError, "FIFO"),
    "model.pt links to /dev/zero": (special_file("device"), CheckpointError, "character device"),
    "0-byte model.pt": (special_file("empty"), CheckpointError, "file is empty"),
    "bzip2 record nothing refers to": (bzip2_record_zip, CheckpointError, "is compressed"),
    "zip of 150,000 records (central directory 9 MB)": (
        lambda p: many_records_zip(p, 150_000), CheckpointError, "central directory is over"),
    "dict keys sharing one hash (ints 2**61-1 apart)": (
        colliding_dict, CheckpointError, "share a hash"),
    "dict key of type complex (complex keys collide by formula)": (
        lambda p: fairseq_zip(p, b"}" + name("builtins", "complex") + b"(" + integer(1000003) +
                              integer(-1) + b"tRNs"), CheckpointError, "type complex"),
    "set() of ints sharing one hash": (
        lambda p: fairseq_zip(p, name("builtins", "set") + b"(](" +
                              b"".join(integer(k) for k in COLLIDING) + b"etR"),
        CheckpointError, "share a hash"),
    "OrderedDict(list of pairs) (keys hashed unchecked)": (
        lambda p: fairseq_zip(p, name("collections", "OrderedDict") + b"(](" + b"".join(
            integer(k) + b"N\x86" for k in COLLIDING) + b"etR"), CheckpointError, "OrderedDict"),
    "protocol-0 PUT index 2**61-1 (memo keys collide)": (
        lambda p: write_zip(p, b"\x80\x02N" + b"p%d\n0}." % (2**61 - 1)), CheckpointError,
        "memoizes under an index"),
    "100,000 nested MARKs (56 bytes of memory per byte)": (
        lambda p: write_zip(p, b"\x80\x02" + b"(" * 100_000 + b"N."), CheckpointError, "(MARKs)"),
    "200,000 empty sets on the stack": (
        lambda p: write_zip(p, empty_sets(200_000)), CheckpointError, "outside any container"),
    "1,001 fairseq class names (kept in a global cache)": (
        lambda p: fairseq_zip(p, b"(" + b"".join(name("fairseq.x", f"C{i}") for i in range(1001)) +
                              b"l"), CheckpointError, "fairseq/omegaconf classes"),
    "_metadata that is a list (resume: AttributeError traceback)": (
        lambda p: write_zip(p, pickled(dict_of(model=name("collections", "OrderedDict") + b")R" +
                                              dict_of(_metadata=b"](J\x01\x00\x00\x00e") + b"b"))),
        UnsafeCheckpointError, "sets state on"),
    "numpy array of 10**12 zero-byte strings": (
        lambda p: write_zip(p, numpy_array_pickle(10**12, "S0")), UnsafeCheckpointError,
        "only plain numbers"),
}


@pytest.mark.parametrize("row", list(CRAFTED))
def test_crafted_pickle_is_a_one_line_error_naming_the_file(row, tmp_path):
    builder, error, needle = CRAFTED[row]
    path = builder(tmp_path / "model.pt")
    started = time.perf_counter()
    with pytest.raises(error) as raised:
        safe_torch_load(path)
    elapsed = time.perf_counter() - started
    message = str(raised.value)
    assert isinstance(raised.value, MinirobError)
    assert message.startswith(str(path)) and "\n" not in message and needle in message, message
    assert elapsed < 5, f"{row}: {elapsed:.1f} s"
    with pytest.raises(CheckpointError, match=str(path)):  # the weights-file path refuses it too
        load_tensor_file(path)


def test_the_tables_sizes():
    """The counts docs/reliability.md states."""
    assert len(DOORS) == 3 and len(ENTRY_POINTS) == 15 and len(CRAFTED) == 51


def test_crafted_files_through_read_state_dict(tmp_path, monkeypatch):
    """The transformers reader (``pytorch_model.bin``) checks every CRC-32 before loading: that
    check once expanded a bzip2 record (1.8 KB -> 4.4 GB, 30 s), also in a legacy file with a zip
    appended. Now neither the check nor the loader ever runs a decompressor."""
    def no_decompressor(*args, **kwargs):
        raise AssertionError("a decompressor ran")

    monkeypatch.setattr(zipfile.bz2, "BZ2Decompressor", no_decompressor)
    path = bzip2_record_zip(tmp_path / "pytorch_model.bin", megabytes=4)
    with pytest.raises(CheckpointError, match="is compressed") as raised:
        read_state_dict(path)
    assert str(raised.value).startswith(str(path))
    legacy = tmp_path / "legacy.bin"  # a legacy file with a zip (a bzip2 record) appended
    torch.save({"w": torch.arange(3.0)}, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes() + bzip2_record_zip(tmp_path / "tail.zip").read_bytes())
    assert torch.equal(read_state_dict(legacy)["w"], torch.arange(3.0))
    for kind in ("directory", "fifo", "device"):  # a traceback (IsADirectoryError) before
        special = special_file(kind)(tmp_path / f"{kind}.bin")
        with pytest.raises(CheckpointError, match=f"{special}: a"):
            read_state_dict(special)


def test_a_file_name_with_control_characters_is_escaped(tmp_path):
    """A fairseq folder's only ``.pt`` may have any name; the error must stay one honest line."""
    folder = tmp_path / "fairseq"
    folder.mkdir()
    (folder / "a\n\x1b[31mERROR fake log line.pt").write_bytes(b"junk")
    for load in (safe_torch_load, lambda p: load_fairseq(folder)):
        with pytest.raises(CheckpointError) as raised:
            load(folder / "a\n\x1b[31mERROR fake log line.pt")
        message = str(raised.value)
        assert "\n" not in message and "\x1b" not in message, repr(message)
        assert "a\\n\\x1b[31mERROR fake log line.pt: not a PyTorch file" in message, message


def test_fairseq_stand_in_classes_are_made_per_load(tmp_path):
    """A global cache of stand-in classes grew by one class per name, load after load (100,000
    names: 270 MB kept); each load now makes its own, and they die with it."""
    path = fairseq_zip(tmp_path / "model.pt", name("fairseq.meters", "AverageMeter") + b")\x81")
    first, second = safe_torch_load(path)["cfg"], safe_torch_load(path)["cfg"]
    assert type(first).qualified_name == type(second).qualified_name == "fairseq.meters.AverageMeter"
    assert type(first) is not type(second)


def test_opcode_and_memo_limits(tmp_path, monkeypatch):
    """MAX_OPCODES bounds the time of a pickle that only pushes and pops (linear, ~3 MB/s), and
    MAX_MEMO the objects kept alive only by the memo (EMPTY_LIST, BINPUT, POP: 56 + ~100 bytes for
    7); shown with small limits, as the real ones take seconds to reach."""
    import minirob.safe_pickle as safe_pickle

    monkeypatch.setattr(safe_pickle, "MAX_OPCODES", 10_000)
    path = write_zip(tmp_path / "model.pt", b"\x80\x02" + b"N0" * 10_000 + b"}.")
    with pytest.raises(CheckpointError, match="more than 10000 opcodes"):
        safe_torch_load(path)
    monkeypatch.setattr(safe_pickle, "MAX_OPCODES", 30_000)
    assert safe_torch_load(path) == {}
    monkeypatch.setattr(safe_pickle, "MAX_MEMO", 5_000)
    memoized = b"".join(b"]r" + struct.pack("<I", i) + b"0" for i in range(6_000))
    path = write_zip(tmp_path / "memo.pt", b"\x80\x02" + memoized + b"}.")
    with pytest.raises(CheckpointError, match="memoizes more than 5000 objects"):
        safe_torch_load(path)


@pytest.mark.parametrize("container", ["zip", "legacy"])
@pytest.mark.parametrize("change", ["shrinks", "grows"])
def test_a_file_changing_while_read(container, change, tmp_path, monkeypatch):
    """Sizes are measured once, on the open handle: a file cut short while it is read is a
    one-line error, and bytes appended meanwhile are never read."""
    import minirob.containers as containers

    tensors = {"w": torch.arange(1000.0)}
    path = tmp_path / "model.pt"
    torch.save(tensors, path, _use_new_zipfile_serialization=container == "zip")
    measure = containers.file_size

    def measured_then_changed(handle):
        size = measure(handle)
        if change == "shrinks":
            os.truncate(path, size - 2000)
        else:
            with open(path, "ab") as more:
                more.write(b"\x80" * 10_000)
        return size

    monkeypatch.setattr(containers, "file_size", measured_then_changed)
    if change == "grows":
        assert torch.equal(safe_torch_load(path)["w"], tensors["w"])
        return
    with pytest.raises(CheckpointError) as raised:
        safe_torch_load(path)
    assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)


def test_real_checkpoints_still_load_bit_identically(tmp_path):
    """A torch.save'd training-style checkpoint: minirob's reader gives what torch.load gives."""
    import random

    import numpy

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(1, 3)).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                     "numpy": numpy.random.get_state()},
             "parameter": torch.nn.Parameter(torch.ones(2)), "view": torch.arange(10.0)[2:8:2],
             "half": torch.ones(3, dtype=torch.bfloat16), "metric": numpy.float64(2.5)}
    for zipped in (True, False):
        path = tmp_path / f"checkpoint-{zipped}.pt"
        torch.save(state, path, _use_new_zipfile_serialization=zipped)
        ours, theirs = safe_torch_load(path), torch.load(path, weights_only=False)
        assert_same(ours, theirs)


def assert_same(ours, theirs, where="") -> None:
    assert type(ours) is type(theirs), where
    if isinstance(ours, torch.Tensor):
        assert (ours.dtype, ours.shape, ours.stride()) == (theirs.dtype, theirs.shape, theirs.stride())
        assert torch.equal(ours, theirs), where
    elif isinstance(ours, dict):
        assert list(ours) == list(theirs), where
        for key in ours:
            assert_same(ours[key], theirs[key], f"{where}/{key}")
    elif isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    elif type(ours).__module__ == "numpy":
        import numpy

        assert numpy.array_equal(ours, theirs), where
    else:
        assert ours == theirs, where
